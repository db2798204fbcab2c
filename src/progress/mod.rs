//! Progress of a build: what a caller of the library is told while it runs
//! ([`ProgressSink`]), and the command line's own sink ([`Progress`]): bars
//! on a terminal, plain lines otherwise, nothing when quiet (results never
//! go there; they go to stdout).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// `n` bytes for people: `512 B`, `1.5 kB`, `2.3 MB`, `1.20 GB`.
pub fn human(n: u64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.2} GB", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.1} MB", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.1} kB", f / 1e3)
    } else {
        format!("{n} B")
    }
}

/// Where a build reports progress. Called from worker threads.
pub trait ProgressSink: Send + Sync {
    /// A line of news (a step's output line, a push starting).
    fn line(&self, msg: &str);
    /// A warning about the definition or the build; shown even when quiet.
    fn warning(&self, msg: &str);
    /// Starts a unit of work of `total` bytes (0: unknown).
    fn start(&self, label: &str, total: u64) -> Box<dyn Task>;
}

/// One unit of work started by [`ProgressSink::start`].
pub trait Task: Send + Sync {
    /// Bytes done so far.
    fn set(&self, done: u64);
    /// A note about the work in progress.
    fn message(&self, msg: &str);
    /// The work ended with `msg` (e.g. `done`, `cached`).
    fn finish(&self, msg: &str);
}

/// A sink that drops everything (for callers that want no progress).
pub struct Silent;

impl ProgressSink for Silent {
    fn line(&self, _: &str) {}
    fn warning(&self, _: &str) {}
    fn start(&self, _: &str, _: u64) -> Box<dyn Task> {
        Box::new(Bar::None)
    }
}

/// The command line's sink on stderr.
pub enum Progress {
    Bars(MultiProgress),
    Lines,
    Quiet,
}

/// A task on the command line's sink.
pub enum Bar {
    Bar(ProgressBar),
    Line(String),
    None,
}

impl Progress {
    /// Bars when stderr is a terminal outside CI (`ci`: the command line
    /// passes whether `CI` is set), plain lines otherwise.
    pub fn auto(quiet: bool, ci: bool) -> Progress {
        if quiet {
            Progress::Quiet
        } else if std::io::stderr().is_terminal() && !ci {
            Progress::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Progress::Lines
        }
    }
}

impl ProgressSink for Progress {
    fn line(&self, msg: &str) {
        match self {
            Progress::Bars(m) => {
                let _ = m.println(msg);
            }
            Progress::Lines => eprintln!("{msg}"),
            Progress::Quiet => {}
        }
    }

    fn warning(&self, msg: &str) {
        match self {
            Progress::Bars(m) => {
                let _ = m.println(msg);
            }
            Progress::Lines | Progress::Quiet => eprintln!("{msg}"),
        }
    }

    fn start(&self, label: &str, total: u64) -> Box<dyn Task> {
        Box::new(self.bar(label, total))
    }
}

impl Progress {
    fn bar(&self, label: &str, total: u64) -> Bar {
        match self {
            Progress::Bars(m) => {
                let b = m.add(ProgressBar::new(total));
                b.set_style(
                    ProgressStyle::with_template(
                        "{prefix} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
                    )
                    .expect("template")
                    .progress_chars("=> "),
                );
                b.set_prefix(label.to_string());
                Bar::Bar(b)
            }
            Progress::Lines => {
                eprintln!("{label}: building");
                Bar::Line(label.to_string())
            }
            Progress::Quiet => Bar::None,
        }
    }
}

impl Task for Bar {
    fn set(&self, n: u64) {
        if let Bar::Bar(b) = self {
            b.set_position(n);
        }
    }

    fn message(&self, msg: &str) {
        match self {
            Bar::Bar(b) => b.set_message(msg.to_string()),
            Bar::Line(l) => eprintln!("{l}: {msg}"),
            Bar::None => {}
        }
    }

    fn finish(&self, msg: &str) {
        match self {
            Bar::Bar(b) => {
                b.finish_and_clear();
                eprintln!("{}: {msg}", b.prefix());
            }
            Bar::Line(l) => eprintln!("{l}: {msg}"),
            Bar::None => {}
        }
    }
}
