//! The command line's sink on stderr, in buildx's `--progress` modes:
//! `tty` (a live view redrawn in place), `plain` (one line per event, for
//! CI logs), `rawjson` (one JSON object per event, schema in
//! docs/progress.md) and `quiet` (warnings only).

use super::term::{self, Kept, Live};
use super::{ProgressSink, Task, human, stage_of};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How progress is shown, as buildx's `--progress` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A live view on a terminal.
    Tty,
    /// One line per event.
    Plain,
    /// Warnings only.
    Quiet,
    /// One JSON object per event.
    RawJson,
}

impl Mode {
    /// Reads a `--progress` value: `auto` is `tty` when stderr is a
    /// terminal and `ci` is false, `plain` otherwise; `none` is `quiet`.
    pub fn parse(s: &str, ci: bool) -> Result<Mode, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => {
                if std::io::stderr().is_terminal() && !ci {
                    Mode::Tty
                } else {
                    Mode::Plain
                }
            }
            "tty" => Mode::Tty,
            "plain" => Mode::Plain,
            "quiet" | "none" => Mode::Quiet,
            "rawjson" => Mode::RawJson,
            other => {
                return Err(format!(
                    "progress mode {other:?}: expected auto, plain, tty, quiet, none or rawjson"
                ));
            }
        })
    }
}

/// The command line's sink. Dropping it (or [`close`](Self::close)) ends
/// the live view, leaving only the finished lines on screen.
pub struct Progress {
    inner: Arc<Inner>,
    ticker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct Inner {
    mode: Mode,
    /// What the header says is happening: `Building`, `Pushing`.
    verb: String,
    t0: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next: u64,
    live: Vec<Live>,
    kept: Vec<Kept>,
    drawn: usize,
    started: u64,
    finished: u64,
    closed: bool,
    /// Per task: when its last progress line or event went out.
    last_report: Vec<(u64, Instant)>,
}

/// Plain mode: a progress line per running task at most this often.
const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// Rawjson mode: a progress event per running task at most this often.
const JSON_EVERY: Duration = Duration::from_millis(250);
/// The live view's redraw period.
const TICK: Duration = Duration::from_millis(100);

impl Progress {
    /// A sink in `mode`; `verb` says what the command does (`Building`).
    pub fn new(mode: Mode, verb: &str) -> Progress {
        let inner = Arc::new(Inner {
            mode,
            verb: verb.to_string(),
            t0: Instant::now(),
            state: Mutex::new(State::default()),
        });
        let ticker = (mode == Mode::Tty).then(|| {
            let inner = inner.clone();
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(TICK);
                    let mut st = inner.lock();
                    if st.closed {
                        break;
                    }
                    inner.draw(&mut st);
                }
            })
        });
        Progress {
            inner,
            ticker: Mutex::new(ticker),
        }
    }

    /// The mode of the command line before `--progress` existed: live on
    /// a terminal outside CI, plain lines otherwise, quiet with `-q`.
    pub fn auto(quiet: bool, ci: bool) -> Progress {
        let mode = if quiet {
            Mode::Quiet
        } else {
            Mode::parse("auto", ci).expect("auto is a mode")
        };
        Progress::new(mode, "Building")
    }

    /// The run failed with `msg`: an `error` event in rawjson mode (the
    /// command line prints the error itself in every mode).
    pub fn error(&self, msg: &str) {
        let st = self.inner.lock();
        if self.inner.mode == Mode::RawJson && !st.closed {
            self.inner.json(&st, "error", None, json!({"message": msg}));
        }
    }

    /// The mode this sink shows progress in.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// Ends the live view: tasks still running are shown as failed, the
    /// finished lines stay, and a last line says how long it all took.
    /// Later reports print plain lines. Called again, does nothing.
    pub fn close(&self) {
        let mut st = self.inner.lock();
        if st.closed {
            return;
        }
        let secs = self.inner.t0.elapsed().as_secs_f64();
        let running: Vec<Live> = std::mem::take(&mut st.live);
        match self.inner.mode {
            Mode::Tty => {
                for t in running {
                    st.kept.push(Kept::Step {
                        label: t.label,
                        status: "ERROR".into(),
                        secs: t.started.elapsed().as_secs_f64(),
                    });
                }
                let (w, _) = term::size();
                let kept: Vec<String> = st.kept.drain(..).map(|k| term::kept_line(&k, w)).collect();
                let last = term::fit(
                    &format!(
                        "[+] {} {}/{} done",
                        self.inner.verb, st.finished, st.started
                    ),
                    &format!("FINISHED  {}", term::secs(secs)),
                    w.saturating_sub(1),
                );
                let last: Vec<String> = if st.started > 0 || st.drawn > 0 {
                    vec![last]
                } else {
                    Vec::new()
                };
                let mut f = term::frame(st.drawn, &kept, &last);
                // Show the cursor again, in case anything hid it.
                f.push_str("\x1b[?25h");
                write_err(&f);
                st.drawn = 0;
            }
            Mode::RawJson => {
                for t in running {
                    self.inner
                        .json(&st, "finish", Some(&t), json!({"status": "error"}));
                }
                self.inner.json(
                    &st,
                    "end",
                    None,
                    json!({"elapsed_ms": (secs * 1000.0) as u64, "tasks": st.started, "finished": st.finished}),
                );
            }
            Mode::Plain | Mode::Quiet => {}
        }
        st.closed = true;
        drop(st);
        if let Some(h) = self.ticker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_err(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(s.as_bytes());
    let _ = e.flush();
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Redraws the live view (tty mode, while open).
    fn draw(&self, st: &mut State) {
        if self.mode != Mode::Tty || st.closed {
            return;
        }
        let (w, h) = term::size();
        let now = Instant::now();
        let kept: Vec<String> = st.kept.drain(..).map(|k| term::kept_line(&k, w)).collect();
        let header = format!(
            "[+] {} {}/{} done",
            self.verb,
            st.finished,
            st.started.max(st.finished)
        );
        let live = term::live_lines(&header, &st.live, w, h, now, self.t0);
        write_err(&term::frame(st.drawn, &kept, &live));
        st.drawn = live.len();
    }

    /// Writes one rawjson event.
    fn json(&self, _st: &State, kind: &str, task: Option<&Live>, extra: Value) {
        let mut o = serde_json::Map::new();
        o.insert("v".into(), json!(1));
        o.insert("ts".into(), json!(unix_ms()));
        o.insert("kind".into(), json!(kind));
        if let Some(t) = task {
            o.insert("id".into(), json!(t.id));
            o.insert("name".into(), json!(t.label));
            if let Some(s) = stage_of(&t.label) {
                o.insert("stage".into(), json!(s));
            }
            o.insert(
                "elapsed_ms".into(),
                json!(t.started.elapsed().as_millis() as u64),
            );
        }
        if let Value::Object(m) = extra {
            o.extend(m);
        }
        if !o.contains_key("status") && task.is_some() {
            o.insert("status".into(), json!("running"));
        }
        write_err(&format!("{}\n", Value::Object(o)));
    }

    /// Plain text on its own line: directly, or above the live view.
    fn text(&self, st: &mut State, msg: &str) {
        match self.mode {
            Mode::Tty if !st.closed => {
                st.kept.push(Kept::Text(msg.to_string()));
                self.draw(st);
            }
            _ => write_err(&format!("{msg}\n")),
        }
    }

    /// Whether the task's periodic report is due (and marks it sent).
    fn due(st: &mut State, id: u64, every: Duration) -> bool {
        let now = Instant::now();
        match st.last_report.iter_mut().find(|(i, _)| *i == id) {
            Some((_, t)) if now.duration_since(*t) < every => false,
            Some((_, t)) => {
                *t = now;
                true
            }
            None => {
                st.last_report.push((id, now));
                true
            }
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl ProgressSink for Progress {
    fn line(&self, msg: &str) {
        let inner = &self.inner;
        let mut st = inner.lock();
        match inner.mode {
            Mode::Quiet => {}
            Mode::RawJson => inner.json(&st, "log", None, json!({"message": msg})),
            Mode::Tty | Mode::Plain => inner.text(&mut st, msg),
        }
    }

    fn warning(&self, msg: &str) {
        let inner = &self.inner;
        let mut st = inner.lock();
        match inner.mode {
            Mode::RawJson => inner.json(&st, "warning", None, json!({"message": msg})),
            _ => inner.text(&mut st, msg),
        }
    }

    fn start(&self, label: &str, total: u64) -> Box<dyn Task> {
        let inner = &self.inner;
        let mut st = inner.lock();
        st.next += 1;
        st.started += 1;
        let id = st.next;
        let t = Live {
            id,
            label: label.to_string(),
            started: Instant::now(),
            total,
            done: 0,
            items: None,
            message: String::new(),
            tail: VecDeque::new(),
        };
        match inner.mode {
            Mode::Plain => write_err(&format!("#{id} {label}\n")),
            Mode::RawJson => inner.json(&st, "start", Some(&t), json!({"total": total})),
            Mode::Tty | Mode::Quiet => {}
        }
        if inner.mode != Mode::Quiet {
            st.live.push(t);
        }
        Box::new(CliTask {
            inner: inner.clone(),
            id,
            finished: AtomicBool::new(false),
        })
    }

    fn output(&self, label: &str, line: &str) {
        let inner = &self.inner;
        let mut st = inner.lock();
        let found = st.live.iter().rposition(|t| t.label == label);
        match (inner.mode, found) {
            (Mode::Quiet, _) => {}
            (Mode::Tty, Some(i)) if !st.closed => {
                let tail = &mut st.live[i].tail;
                tail.push_back(line.to_string());
                while tail.len() > term::TAIL {
                    tail.pop_front();
                }
            }
            (Mode::Plain, Some(i)) => {
                let t = &st.live[i];
                match stage_of(&t.label) {
                    Some(s) => write_err(&format!("#{} [{s}] {line}\n", t.id)),
                    None => write_err(&format!("#{} {line}\n", t.id)),
                }
            }
            (Mode::RawJson, Some(i)) => {
                let t = &st.live[i];
                inner.json(&st, "output", Some(t), json!({"message": line}));
            }
            (Mode::RawJson, None) => {
                inner.json(&st, "output", None, json!({"name": label, "message": line}))
            }
            (_, _) => inner.text(&mut st, &format!("{label} | {line}")),
        }
    }
}

/// A task on the command line's sink.
struct CliTask {
    inner: Arc<Inner>,
    id: u64,
    finished: AtomicBool,
}

impl CliTask {
    /// Updates the running task with `f`, then reports the progress if
    /// one is due in this mode.
    fn update(&self, f: impl FnOnce(&mut Live)) {
        let inner = &self.inner;
        let mut st = inner.lock();
        let Some(i) = st.live.iter().position(|t| t.id == self.id) else {
            return;
        };
        f(&mut st.live[i]);
        match inner.mode {
            Mode::Plain
                if State::figures_known(&st.live[i])
                    && Inner::due(&mut st, self.id, PLAIN_EVERY) =>
            {
                let t = &st.live[i];
                write_err(&format!("#{} {}\n", t.id, plain_figures(t)));
            }
            Mode::RawJson => {
                let at_end = {
                    let t = &st.live[i];
                    (t.total > 0 && t.done >= t.total)
                        || t.items.is_some_and(|(d, n)| n > 0 && d >= n)
                };
                if at_end || Inner::due(&mut st, self.id, JSON_EVERY) {
                    let t = &st.live[i];
                    inner.json(&st, "progress", Some(t), figures_json(t));
                }
            }
            _ => {}
        }
    }

    fn end(&self, msg: &str, ok: bool) {
        if self.finished.swap(true, Ordering::SeqCst) {
            return;
        }
        let inner = &self.inner;
        let mut st = inner.lock();
        let Some(i) = st.live.iter().position(|t| t.id == self.id) else {
            // Quiet mode keeps no tasks; a closed view already ended it.
            if inner.mode == Mode::Quiet {
                st.finished += 1;
            }
            return;
        };
        let t = st.live.remove(i);
        st.last_report.retain(|(id, _)| *id != self.id);
        st.finished += 1;
        let secs = t.started.elapsed().as_secs_f64();
        let status = if !ok {
            "error"
        } else if msg.starts_with("cached") {
            "cached"
        } else {
            "done"
        };
        match inner.mode {
            Mode::Tty if !st.closed => {
                let shown = match (ok, msg.is_empty()) {
                    (false, _) => "ERROR".to_string(),
                    (true, true) => "done".to_string(),
                    (true, false) => msg.to_string(),
                };
                st.kept.push(Kept::Step {
                    label: t.label.clone(),
                    status: shown,
                    secs,
                });
                inner.draw(&mut st);
            }
            Mode::Tty => {}
            Mode::Plain => {
                let word = match status {
                    "error" => "ERROR",
                    "cached" => "CACHED",
                    _ => "DONE",
                };
                let tail = if msg.is_empty() || status == "cached" {
                    String::new()
                } else {
                    format!(" {msg}")
                };
                write_err(&format!("#{} {word} {}{tail}\n", t.id, term::secs(secs)));
            }
            Mode::RawJson => {
                let mut extra = figures_json(&t);
                if let Value::Object(m) = &mut extra {
                    m.insert("status".into(), json!(status));
                    if !msg.is_empty() {
                        m.insert("message".into(), json!(msg));
                    }
                }
                inner.json(&st, "finish", Some(&t), extra);
            }
            Mode::Quiet => {}
        }
    }
}

impl State {
    fn figures_known(t: &Live) -> bool {
        t.total > 0 || t.done > 0 || t.items.is_some()
    }
}

/// A plain progress line's figures: `3/10 items, 1.2 MB / 4.0 MB`.
fn plain_figures(t: &Live) -> String {
    let mut parts: Vec<String> = t.items_text().into_iter().collect();
    if t.total > 0 {
        parts.push(format!("{} / {}", human(t.done), human(t.total)));
    } else if t.done > 0 {
        parts.push(human(t.done));
    }
    parts.push(term::secs(t.started.elapsed().as_secs_f64()));
    parts.join(" ")
}

/// A JSON event's figures: bytes as current/total, items apart.
fn figures_json(t: &Live) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("current".into(), json!(t.done));
    m.insert("total".into(), json!(t.total));
    if let Some((d, n)) = t.items {
        m.insert("items".into(), json!(d));
        m.insert("items_total".into(), json!(n));
    }
    Value::Object(m)
}

impl Task for CliTask {
    fn set(&self, done: u64) {
        self.update(|t| t.done = done);
    }

    fn message(&self, msg: &str) {
        let inner = &self.inner;
        match inner.mode {
            Mode::Tty => self.update(|t| t.message = msg.to_string()),
            Mode::Plain => {
                let st = inner.lock();
                if st.live.iter().any(|t| t.id == self.id) {
                    write_err(&format!("#{} {msg}\n", self.id));
                }
            }
            Mode::RawJson => {
                let st = inner.lock();
                if let Some(t) = st.live.iter().find(|t| t.id == self.id) {
                    inner.json(&st, "message", Some(t), json!({"message": msg}));
                }
            }
            Mode::Quiet => {}
        }
    }

    fn finish(&self, msg: &str) {
        self.end(msg, true);
    }

    fn set_total(&self, total: u64) {
        self.update(|t| t.total = total);
    }

    fn items(&self, done: u64, total: u64) {
        self.update(|t| t.items = Some((done, total)));
    }
}

impl Drop for CliTask {
    fn drop(&mut self) {
        self.end("", false);
    }
}
