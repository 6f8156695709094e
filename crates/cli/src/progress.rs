//! Progress bars for a person at a terminal: indicatif on stderr while a long job runs
//! (a cold start's training, `simulate`, `prune`, `--read` of a large file), cleared
//! when it ends. Under cron, with `--json`, or whenever stderr is not a terminal the bar
//! is hidden and costs nothing, so what scripts and cron mail see never changes.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};

/// What a bar counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Things (minutes, rounds, epochs): `12/60`.
    Count,
    /// Bytes of a file: `1.2 GiB/3.4 GiB`.
    Bytes,
}

/// True when bars should be drawn: stderr is a terminal and the output is not JSON.
pub fn wanted(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// A progress bar, or nothing when not [`wanted`].
#[derive(Clone, Debug)]
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar of `len` units labelled `what`, drawn only when `show`.
    pub fn new(show: bool, what: &str, len: u64, unit: Unit) -> Bar {
        if !show {
            return Bar::hidden();
        }
        let template = match unit {
            Unit::Count => "{prefix:>9} [{bar:32}] {pos}/{len} {msg} ({elapsed}, {eta} left)",
            Unit::Bytes => {
                "{prefix:>9} [{bar:32}] {bytes}/{total_bytes} {msg} ({elapsed}, {eta} left)"
            }
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = ProgressBar::new(len)
            .with_style(style)
            .with_prefix(what.to_owned())
            // Dropped mid-job (an error returned early): no bar is left behind.
            .with_finish(ProgressFinish::AndClear);
        // Ticks even while a step takes long (an epoch, a round's deletion).
        bar.enable_steady_tick(Duration::from_millis(250));
        Bar(bar)
    }

    /// A bar that draws nothing.
    pub fn hidden() -> Bar {
        Bar(ProgressBar::hidden())
    }

    /// The total, when it is known only once the job has started.
    pub fn set_length(&self, len: u64) {
        self.0.set_length(len);
    }

    pub fn set_position(&self, pos: u64) {
        self.0.set_position(pos);
    }

    pub fn inc(&self, n: u64) {
        self.0.inc(n);
    }

    /// Text after the counts (a loss, a file name), escaped as stored names are: a
    /// file name cannot move the cursor or clear the screen.
    pub fn set_message(&self, msg: &str) {
        self.0
            .set_message(portwatch_capture::escape::escape(msg.as_bytes()));
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}
