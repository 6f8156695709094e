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
    long_helps(cmd)
        .into_iter()
        .filter(|(_, help)| !help.contains("Examples:"))
        .map(|(path, _)| path)
        .collect()
}

/// Every command's long `--help` (`collector`, `collector simulate`, …), by path.
pub fn long_helps(cmd: &Command) -> Vec<(String, String)> {
    fn walk(cmd: &Command, path: &str, out: &mut Vec<(String, String)>) {
        let path = format!("{path}{}", cmd.get_name());
        let mut c = cmd.clone();
        out.push((path.clone(), c.render_long_help().to_string()));
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            walk(sub, &format!("{path} "), out);
        }
    }
    let mut out = Vec::new();
    walk(cmd, "", &mut out);
    out
}

/// Compares every command's `--help` with the snapshot at `path` (a change to what
/// users read shows in review as a diff of that file). With
/// `PORTWATCH_UPDATE_SNAPSHOTS=1` in the environment it writes the snapshot instead.
/// Returns the first differing line, if any.
pub fn check_help_snapshot(cmd: &Command, path: &std::path::Path) -> Result<(), String> {
    let mut text = String::new();
    for (name, help) in long_helps(cmd) {
        text.push_str(&format!("$ {name} --help\n{}\n", help.trim_end()));
    }
    if std::env::var_os("PORTWATCH_UPDATE_SNAPSHOTS").is_some() {
        return std::fs::write(path, &text).map_err(|e| format!("{}: {e}", path.display()));
    }
    let want = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: {e} (PORTWATCH_UPDATE_SNAPSHOTS=1 writes it)",
            path.display()
        )
    })?;
    if want == text {
        return Ok(());
    }
    let at = want
        .lines()
        .zip(text.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(want.lines().count().min(text.lines().count()));
    Err(format!(
        "--help differs from {} at line {}: {:?} now, {:?} in the snapshot \
         (PORTWATCH_UPDATE_SNAPSHOTS=1 cargo test rewrites it; review the diff)",
        path.display(),
        at + 1,
        text.lines().nth(at).unwrap_or("<end>"),
        want.lines().nth(at).unwrap_or("<end>"),
    ))
}
