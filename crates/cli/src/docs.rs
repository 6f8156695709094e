//! Shell completions and man pages, generated from a program's clap definition so
//! that they can never disagree with its `--help`: `PROGRAM completions SHELL` and
//! `PROGRAM man` print them for the package to install.

use clap::{Command, Subcommand};

pub use clap_complete::Shell;

/// The two subcommands both programs take, flattened into each one's command enum.
#[derive(Debug, Clone, Subcommand)]
pub enum DocsCommand {
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Examples:\n  \
        collector completions bash > /usr/share/bash-completion/completions/collector\n  \
        detector completions zsh > /usr/local/share/zsh/site-functions/_detector\n  \
        collector completions fish > ~/.config/fish/completions/collector.fish")]
    Completions {
        #[arg(value_name = "SHELL")]
        shell: Shell,
    },
    /// Print the man page (roff).
    #[command(after_help = "Examples:\n  \
        collector man > /usr/local/share/man/man1/collector.1\n  \
        detector man | man -l -")]
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

/// Every command and subcommand of `cmd` whose `--help` lacks an `Examples:` section
/// (their paths, e.g. `detector allow add`): for the programs' tests.
pub fn without_examples(cmd: &Command) -> Vec<String> {
    fn walk(cmd: &Command, path: &str, out: &mut Vec<String>) {
        let path = format!("{path}{}", cmd.get_name());
        let mut c = cmd.clone();
        if !c.render_long_help().to_string().contains("Examples:") {
            out.push(path.clone());
        }
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            walk(sub, &format!("{path} "), out);
        }
    }
    let mut out = Vec::new();
    walk(cmd, "", &mut out);
    out
}
