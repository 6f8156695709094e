//! Shell completions and man pages, generated from a program's clap definition so
//! that they can never disagree with its `--help`: `PROGRAM completions SHELL` and
//! `PROGRAM man` print them for the package to install.

use clap::{Command, Subcommand};

pub use clap_complete::Shell;

/// The two subcommands both programs take, flattened into each one's command enum.
#[derive(Debug, Clone, Subcommand)]
pub enum DocsCommand {
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell), e.g.
    /// `collector completions bash > /usr/share/bash-completion/completions/collector`.
    Completions {
        #[arg(value_name = "SHELL")]
        shell: Shell,
    },
    /// Print the man page (roff), e.g. `collector man > /usr/share/man/man1/collector.1`.
    Man,
}

/// Writes what `which` asks for about `cmd` to stdout (built in memory first: the
/// generators panic on a failed write, and `| head` is not an error).
pub fn print(which: &DocsCommand, mut cmd: Command) -> std::io::Result<()> {
    let mut out = Vec::new();
    match which {
        DocsCommand::Completions { shell } => {
            let name = cmd.get_name().to_string();
            clap_complete::generate(*shell, &mut cmd, name, &mut out);
        }
        DocsCommand::Man => clap_mangen::Man::new(cmd).render(&mut out)?,
    }
    crate::output::emit(&String::from_utf8_lossy(&out))
}
