//! Progress on stderr: bars on a terminal, plain lines otherwise, nothing
//! when quiet. Results never go here; they go to stdout.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub enum Progress {
    Bars(MultiProgress),
    Lines,
    Quiet,
}

pub enum Bar {
    Bar(ProgressBar),
    Line(String),
    None,
}

impl Progress {
    /// Bars when stderr is a terminal, plain lines otherwise.
    pub fn auto(quiet: bool) -> Progress {
        if quiet {
            Progress::Quiet
        } else if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() {
            Progress::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Progress::Lines
        }
    }

    pub fn line(&self, msg: &str) {
        match self {
            Progress::Bars(m) => {
                let _ = m.println(msg);
            }
            Progress::Lines => eprintln!("{msg}"),
            Progress::Quiet => {}
        }
    }

    /// Starts a unit of work of `total` bytes.
    pub fn start(&self, label: &str, total: u64) -> Bar {
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

impl Bar {
    pub fn set(&self, n: u64) {
        if let Bar::Bar(b) = self {
            b.set_position(n);
        }
    }

    /// A note about the work in progress.
    pub fn message(&self, msg: &str) {
        match self {
            Bar::Bar(b) => b.set_message(msg.to_string()),
            Bar::Line(l) => eprintln!("{l}: {msg}"),
            Bar::None => {}
        }
    }

    pub fn finish(&self, msg: &str) {
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
