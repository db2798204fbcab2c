//! The terminal view: a live area at the bottom of the screen (a header
//! with the elapsed time, then one line per running task with its figures
//! and the last lines it printed), redrawn in place; finished tasks and
//! news go above it as lines that stay. Every live line is cut to the
//! terminal's width, so nothing wraps and the redraw stays in place.

use super::human;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Output lines kept under a running task.
pub(super) const TAIL: usize = 3;

/// A running task as the view shows it.
pub(super) struct Live {
    pub id: u64,
    pub label: String,
    pub started: Instant,
    pub total: u64,
    pub done: u64,
    pub items: Option<(u64, u64)>,
    pub message: String,
    pub tail: VecDeque<String>,
}

impl Live {
    /// Items done, of how many when that is known: `3/10`, `3`.
    pub fn items_text(&self) -> Option<String> {
        self.items.map(|(d, n)| {
            if n > 0 {
                format!("{d}/{n}")
            } else {
                d.to_string()
            }
        })
    }
}

/// A line that stays: text as is (news, warnings), or a finished task
/// cut to the width with its status and time kept.
pub(super) enum Kept {
    Text(String),
    Step {
        label: String,
        status: String,
        secs: f64,
    },
}

/// The terminal's size (columns, rows) on stderr; 80×24 when unknown.
pub(super) fn size() -> (usize, usize) {
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: fd 2 is ours to query; the pointer is to a live `winsize`.
    let ok = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 && ws.ws_row > 0 {
        (ws.ws_col as usize, ws.ws_row as usize)
    } else {
        (80, 24)
    }
}

/// `s` cut to `width` columns (one column per char), with `…` when cut.
pub(super) fn cut(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// `left` and `right` on one line of `width` columns: `right` kept whole
/// when it fits, `left` cut to what is left.
pub(super) fn fit(left: &str, right: &str, width: usize) -> String {
    let rn = right.chars().count();
    if right.is_empty() {
        return cut(left, width);
    }
    if rn + 2 > width {
        return cut(&format!("{left} {right}"), width);
    }
    let room = width - rn - 1;
    let l = cut(left, room);
    let pad = room - l.chars().count();
    format!("{l}{} {right}", " ".repeat(pad))
}

/// A duration for people: `0.4s`, `12.3s`, `2m05s`.
pub(super) fn secs(d: f64) -> String {
    if d < 60.0 {
        format!("{d:.1}s")
    } else {
        let s = d as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// The figures of a running task: items, bytes of a total with a bar,
/// the speed when bytes move, and the elapsed time.
fn figures(t: &Live, now: Instant) -> String {
    let el = now.duration_since(t.started);
    let mut parts: Vec<String> = t.items_text().into_iter().collect();
    if t.total > 0 {
        let frac = (t.done as f64 / t.total as f64).clamp(0.0, 1.0);
        let full = (frac * 10.0).round() as usize;
        parts.push(format!(
            "[{}{}] {}/{}",
            "=".repeat(full),
            " ".repeat(10 - full),
            human(t.done),
            human(t.total)
        ));
    } else if t.done > 0 {
        parts.push(human(t.done));
    }
    if t.done > 0 && el >= Duration::from_millis(300) {
        parts.push(format!(
            "{}/s",
            human((t.done as f64 / el.as_secs_f64()) as u64)
        ));
    }
    parts.push(secs(el.as_secs_f64()));
    parts.join("  ")
}

/// A spinner frame: it turns with time, so the screen changes while a
/// task runs even when its figures do not.
fn spinner(now: Instant, started: Instant) -> char {
    const FRAMES: [char; 4] = ['-', '\\', '|', '/'];
    FRAMES[(now.duration_since(started).as_millis() / 150) as usize % 4]
}

/// The rendering of a kept line at `width`.
pub(super) fn kept_line(k: &Kept, width: usize) -> String {
    match k {
        Kept::Text(t) => t.clone(),
        Kept::Step {
            label,
            status,
            secs: s,
        } => fit(
            &format!("=> {label}"),
            &format!("{status}  {}", secs(*s)),
            width.saturating_sub(1),
        ),
    }
}

/// The live lines: a header, then each running task with its tail; no
/// more than `rows - 1` lines, each at most `width - 1` columns.
pub(super) fn live_lines(
    header: &str,
    tasks: &[Live],
    width: usize,
    rows: usize,
    now: Instant,
    t0: Instant,
) -> Vec<String> {
    let w = width.saturating_sub(1).max(1);
    let max = rows.saturating_sub(1).max(1);
    let mut out = vec![fit(header, &secs(now.duration_since(t0).as_secs_f64()), w)];
    let shown_tails = max.saturating_sub(1) > tasks.len() * (1 + TAIL);
    for (i, t) in tasks.iter().enumerate() {
        if out.len() + 1 >= max && i + 1 < tasks.len() {
            out.push(cut(&format!(" … and {} more running", tasks.len() - i), w));
            break;
        }
        let left = if t.message.is_empty() {
            format!("{} {}", spinner(now, t0), t.label)
        } else {
            format!("{} {}  {}", spinner(now, t0), t.label, t.message)
        };
        out.push(fit(&left, &figures(t, now), w));
        if shown_tails {
            for l in &t.tail {
                out.push(cut(&format!("    | {l}"), w));
            }
        }
    }
    out.truncate(max);
    out
}

/// The bytes that replace `drawn` live lines with `kept` lines (which
/// stay) and `live` lines (drawn again next time).
pub(super) fn frame(drawn: usize, kept: &[String], live: &[String]) -> String {
    let mut s = String::new();
    if drawn > 0 {
        s.push_str(&format!("\x1b[{drawn}A"));
    }
    s.push('\r');
    s.push_str("\x1b[J");
    for k in kept {
        s.push_str(k);
        s.push_str("\x1b[K\n");
    }
    for l in live {
        s.push_str(l);
        s.push_str("\x1b[K\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(label: &str) -> Live {
        Live {
            id: 1,
            label: label.into(),
            started: Instant::now(),
            total: 0,
            done: 0,
            items: None,
            message: String::new(),
            tail: VecDeque::new(),
        }
    }

    #[test]
    fn lines_fit_the_width() {
        let now = Instant::now();
        let mut t = task(&"[app] RUN ".repeat(30));
        t.total = 1000;
        t.done = 500;
        t.tail.push_back("x".repeat(300));
        for width in [10, 20, 40, 100] {
            for l in live_lines("[+] Building", &[t.clone_for_test()], width, 40, now, now) {
                assert!(l.chars().count() < width, "{width}: {l:?}");
            }
        }
        let l = fit("=> [app] RUN something long", "done  1.2s", 20);
        assert_eq!(l.chars().count(), 20);
        assert!(l.ends_with("done  1.2s"), "{l}");
    }

    #[test]
    fn figures_show_bytes_of_a_total_and_items() {
        let mut t = task("x");
        t.started = Instant::now() - Duration::from_secs(2);
        t.total = 2_000_000;
        t.done = 1_000_000;
        t.items = Some((3, 10));
        let f = figures(&t, Instant::now());
        assert!(f.contains("3/10"), "{f}");
        assert!(f.contains("1.0 MB/2.0 MB"), "{f}");
        assert!(f.contains("kB/s"), "{f}");
        assert!(f.contains("2.0s"), "{f}");
    }

    #[test]
    fn many_tasks_stay_within_the_rows() {
        let now = Instant::now();
        let tasks: Vec<Live> = (0..50).map(|i| task(&format!("t{i}"))).collect();
        let l = live_lines("h", &tasks, 80, 10, now, now);
        assert_eq!(l.len(), 9);
        assert!(l.last().unwrap().contains("more running"), "{l:?}");
    }

    impl Live {
        fn clone_for_test(&self) -> Live {
            Live {
                id: self.id,
                label: self.label.clone(),
                started: self.started,
                total: self.total,
                done: self.done,
                items: self.items,
                message: self.message.clone(),
                tail: self.tail.clone(),
            }
        }
    }
}
