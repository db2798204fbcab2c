//! Progress of a build: what a caller of the library is told while it runs
//! ([`ProgressSink`], [`Task`]), the sink that phases deep in the build
//! report to without a sink passed down to them ([`with_sink`], [`start`]),
//! and the command line's own sink ([`Progress`], in `cli`): live lines on
//! a terminal, one line per event in logs, JSON lines for programs, or
//! nothing but warnings. Results never go there; they go to stdout.

mod cli;
mod term;

pub use cli::{Mode, Progress};

use std::sync::RwLock;

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
///
/// Only [`line`](Self::line), [`warning`](Self::warning) and
/// [`start`](Self::start) must be written; the other methods have
/// defaults built on them.
pub trait ProgressSink: Send + Sync {
    /// A line of news (a push starting, a summary).
    fn line(&self, msg: &str);
    /// A warning about the definition or the build; shown even when quiet.
    fn warning(&self, msg: &str);
    /// Starts a unit of work of `total` bytes (0: unknown, or counted in
    /// items with [`Task::items`]). `label` names it, with its image or
    /// stage in brackets first when it has one: `[app] RUN make`.
    fn start(&self, label: &str, total: u64) -> Box<dyn Task>;
    /// A line a running step printed (a RUN command's output); `label` is
    /// the label its task was started with. Default: a [`line`](Self::line)
    /// `label | line`.
    fn output(&self, label: &str, line: &str) {
        self.line(&format!("{label} | {line}"));
    }
}

/// One unit of work started by [`ProgressSink::start`]. A task dropped
/// without [`finish`](Self::finish) failed (the build stopped on an error).
pub trait Task: Send + Sync {
    /// Bytes done so far.
    fn set(&self, done: u64);
    /// A note about the work in progress (what it is doing now).
    fn message(&self, msg: &str);
    /// The work ended with `msg` (e.g. `done`, `cached`, `3 files, 1 kB`).
    fn finish(&self, msg: &str);
    /// The total in bytes became known after the start (0: unknown).
    /// Default: ignored.
    fn set_total(&self, _total: u64) {}
    /// Items (packages, files, blobs, indices) done of `total` so far.
    /// Default: ignored.
    fn items(&self, _done: u64, _total: u64) {}
}

/// A sink that drops everything (for callers that want no progress).
pub struct Silent;

impl ProgressSink for Silent {
    fn line(&self, _: &str) {}
    fn warning(&self, _: &str) {}
    fn start(&self, _: &str, _: u64) -> Box<dyn Task> {
        Box::new(NoTask)
    }
}

/// A task that reports nothing.
pub struct NoTask;

impl Task for NoTask {
    fn set(&self, _: u64) {}
    fn message(&self, _: &str) {}
    fn finish(&self, _: &str) {}
}

/// A sink borrowed for the time of [`with_sink`], its lifetime erased.
struct Current(*const (dyn ProgressSink + 'static));

// SAFETY: the pointer is only read while the sink it points to is
// borrowed by a running `with_sink`, and `ProgressSink` is `Send + Sync`.
unsafe impl Send for Current {}
// SAFETY: as above; the sink is `Sync`.
unsafe impl Sync for Current {}

/// The sinks of the `with_sink` calls running now, innermost last.
static CURRENT: RwLock<Vec<(u64, Current)>> = RwLock::new(Vec::new());

/// Runs `f` with `sink` as the sink that [`start`] reports to, from any
/// thread, until `f` returns. The build's phases that are given no sink
/// (index fetches, resolution, downloads, pushes) report through it. With
/// several at once, the latest one started gets the reports.
pub fn with_sink<R>(sink: &dyn ProgressSink, f: impl FnOnce() -> R) -> R {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let token = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ptr: *const (dyn ProgressSink + '_) = sink;
    // SAFETY: only the lifetime of the pointer changes. The pointer is
    // removed by `Guard` when this call ends (returning or unwinding),
    // before `sink`'s borrow ends, and `start` uses it under the read lock
    // that the removal waits for; tasks it returns do not borrow the sink.
    let ptr: *const (dyn ProgressSink + 'static) = unsafe { std::mem::transmute(ptr) };
    CURRENT
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .push((token, Current(ptr)));
    struct Guard(u64);
    impl Drop for Guard {
        fn drop(&mut self) {
            CURRENT
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|(t, _)| *t != self.0);
        }
    }
    let _guard = Guard(token);
    f()
}

/// Starts a task on the sink of the running [`with_sink`] (one that
/// reports nothing when there is none).
pub fn start(label: &str, total: u64) -> Box<dyn Task> {
    let cur = CURRENT.read().unwrap_or_else(|e| e.into_inner());
    match cur.last() {
        // SAFETY: the sink is alive while its entry is listed (see
        // `with_sink`), and the read lock is held during the call.
        Some((_, Current(p))) => unsafe { &**p }.start(label, total),
        None => Box::new(NoTask),
    }
}

/// A line of news on the sink of the running [`with_sink`], if any.
pub fn line(msg: &str) {
    let cur = CURRENT.read().unwrap_or_else(|e| e.into_inner());
    if let Some((_, Current(p))) = cur.last() {
        // SAFETY: as in `start`.
        unsafe { &**p }.line(msg);
    }
}

/// A warning (`warning: …`) on the sink of the running [`with_sink`]; on
/// standard error when there is none (a warning is never lost).
pub fn warning(msg: &str) {
    let cur = CURRENT.read().unwrap_or_else(|e| e.into_inner());
    match cur.last() {
        // SAFETY: as in `start`.
        Some((_, Current(p))) => unsafe { &**p }.warning(msg),
        None => eprintln!("{msg}"),
    }
}

/// The image or stage a label names in brackets first (`[app] RUN make`
/// → `app`).
pub fn stage_of(label: &str) -> Option<&str> {
    let rest = label.strip_prefix('[')?;
    let end = rest.find(']')?;
    Some(&rest[..end]).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<String>>);
    impl ProgressSink for Collect {
        fn line(&self, m: &str) {
            self.0.lock().unwrap().push(m.to_string());
        }
        fn warning(&self, m: &str) {
            self.line(m);
        }
        fn start(&self, label: &str, _: u64) -> Box<dyn Task> {
            self.line(&format!("start {label}"));
            Box::new(NoTask)
        }
    }

    #[test]
    fn ambient_sink_gets_reports_only_while_set() {
        let c = Collect::default();
        start("before", 0).finish("x");
        with_sink(&c, || {
            std::thread::scope(|s| {
                s.spawn(|| start("inside", 0).finish("ok"));
            });
            line("news");
        });
        start("after", 0).finish("x");
        assert_eq!(*c.0.lock().unwrap(), ["start inside", "news"]);
    }

    #[test]
    fn default_output_is_a_prefixed_line() {
        let c = Collect::default();
        c.output("[app] RUN x", "hello");
        assert_eq!(*c.0.lock().unwrap(), ["[app] RUN x | hello"]);
    }

    #[test]
    fn stages_of_labels() {
        assert_eq!(stage_of("[app] RUN make"), Some("app"));
        assert_eq!(stage_of("Python packages"), None);
        assert_eq!(stage_of("[] x"), None);
    }
}
