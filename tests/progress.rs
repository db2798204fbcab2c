//! `--progress`: the live view read from a real terminal (tmux), plain
//! lines for logs, JSON lines for programs, quiet, and the environment's
//! defaults, on a Dockerfile build with a slow RUN step.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::pybase::dockerfile_test_base as base;
use support::*;

/// A context whose Dockerfile has a files layer and a RUN step that
/// prints six lines over about three seconds, then a quick RUN step.
fn context(dir: &Path, base: &Path) -> PathBuf {
    let ctx = dir.join("ctx");
    write_file(&ctx, "data.bin", mixed_bytes(4 << 20, 7), 0o644);
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM oci:{}:latest AS app\n\
             COPY data.bin /data.bin\n\
             RUN for i in 1 2 3 4 5 6; do echo tick-$i; sleep 0.5; done\n\
             RUN echo quick-step-done\n",
            base.display()
        ),
    );
    ctx
}

/// `imgbuild build -f CTX/Dockerfile CTX` with a store and output of its
/// own, the progress environment cleared.
fn build(ctx: &Path, dir: &Path, name: &str) -> Ib {
    ib(&["build", "-f"])
        .path_arg(&ctx.join("Dockerfile"))
        .path_arg(ctx)
        .cache(&dir.join(format!("store-{name}")))
        .oci_out(&dir.join(format!("out-{name}")))
        .env("IMGBUILD_PROGRESS", "")
        .env("BUILDKIT_PROGRESS", "")
}

// ---------------------------------------------------------------------------
// tmux
// ---------------------------------------------------------------------------

/// A tmux server of its own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `cmd` (a shell command line) in a detached `width`×`height`
    /// session; `__END__ CODE` is printed when it exits, and the pane stays.
    fn start(name: &str, width: u32, height: u32, cmd: &str) -> Tmux {
        let socket = format!("imgbuild-progress-{}-{name}", std::process::id());
        let t = Tmux { socket };
        let full = format!("{cmd}; echo __END__ $?; sleep 600");
        let st = t
            .cmd()
            .args(["new-session", "-d", "-s", "t", "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .arg(full)
            .status()
            .expect("run tmux");
        assert!(st.success(), "tmux new-session failed");
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]);
        c
    }

    /// The visible screen, lines as shown (`joined`: wrapped lines
    /// joined, as they were written), with the scrollback when `history`.
    fn capture(&self, history: bool, joined: bool) -> String {
        let mut c = self.cmd();
        c.args(["capture-pane", "-p", "-t", "t"]);
        if history {
            c.args(["-S", "-"]);
        }
        if joined {
            c.arg("-J");
        }
        let out = c.output().expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Screens sampled every 100 ms until the command ends (at most
    /// `limit`), with the time each was taken.
    fn sample_until_end(&self, limit: Duration) -> Vec<(Instant, String)> {
        let t0 = Instant::now();
        let mut shots = Vec::new();
        loop {
            let s = self.capture(false, false);
            let end = s.contains("__END__");
            shots.push((Instant::now(), s));
            if end {
                return shots;
            }
            assert!(
                t0.elapsed() < limit,
                "the build did not end in {limit:?}; screen:\n{}",
                shots.last().unwrap().1
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// Fails the test (never skips it) without tmux.
fn require_tmux() {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`tmux` is needed by this test but cannot be run: install it with `apt-get install tmux`"
    );
}

/// A shell word.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The command line for tmux: the build with stdout to `stdout`.
fn tty_command(ctx: &Path, dir: &Path, name: &str, mode: &str, stdout: &Path) -> String {
    format!(
        "env -u CI -u IMGBUILD_PROGRESS -u BUILDKIT_PROGRESS {} build -f {} {} --cache-dir {} --output {} --progress {mode} > {}",
        sh(bin()),
        sh(ctx.join("Dockerfile").to_str().unwrap()),
        sh(ctx.to_str().unwrap()),
        sh(dir.join(format!("store-{name}")).to_str().unwrap()),
        sh(&format!(
            "oci:{}",
            dir.join(format!("out-{name}")).display()
        )),
        sh(stdout.to_str().unwrap()),
    )
}

fn is_spinner_line(l: &str) -> bool {
    let mut c = l.chars();
    matches!(c.next(), Some('-' | '\\' | '|' | '/')) && c.next() == Some(' ')
}

/// On a terminal (`auto` outside CI): live lines with figures that keep
/// moving during a slow step, finished steps collapsed to one line each,
/// nothing left of the live view at the end, results on stdout only.
#[test]
fn tty_shows_live_steps_and_collapses_them() {
    let Some(base) = base("tty_shows_live_steps_and_collapses_them") else {
        return;
    };
    require_tmux();
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path(), &base);
    let stdout = t.path().join("stdout.txt");
    let tmux = Tmux::start(
        "wide",
        100,
        40,
        &tty_command(&ctx, t.path(), "wide", "auto", &stdout),
    );
    let shots = tmux.sample_until_end(Duration::from_secs(600));
    let last = tmux.capture(true, false);
    assert!(last.contains("__END__ 0"), "the build failed:\n{last}");

    // Live: the slow RUN step on its own line with its elapsed time, and
    // its output lines under it while it runs.
    let run_label = "[app] commands for i in 1 2 3 4 5 6";
    let live_run = shots.iter().find(|(_, s)| {
        s.lines()
            .any(|l| is_spinner_line(l) && l.contains(run_label) && l.trim_end().ends_with('s'))
            && s.contains("| tick-")
    });
    assert!(
        live_run.is_some(),
        "no screen showed the RUN step live with its time and output:\n{}",
        shots
            .iter()
            .map(|(_, s)| s.as_str())
            .collect::<Vec<_>>()
            .join("\n-----\n")
    );
    // Every screen has a header counting steps and time.
    assert!(
        shots
            .iter()
            .filter(|(_, s)| !s.trim().is_empty() && !s.contains("__END__"))
            .all(|(_, s)| s.contains("[+] Building")),
        "a screen without the header"
    );

    // Never silent: from the first output to the end, the screen changes
    // at least every few seconds.
    let first = shots
        .iter()
        .position(|(_, s)| !s.trim().is_empty())
        .expect("something was shown");
    let mut longest = Duration::ZERO;
    let mut since = shots[first].0;
    for w in shots[first..].windows(2) {
        if w[0].1 != w[1].1 {
            longest = longest.max(w[1].0 - since);
            since = w[1].0;
        }
    }
    assert!(
        longest < Duration::from_secs(4),
        "the screen stood still for {longest:?}"
    );

    // At the end: each step once, collapsed; no live lines, no output
    // tails, the closing line; the result went to stdout, not here.
    let lines: Vec<&str> = last.lines().collect();
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    for step in [
        "=> [app] commands for i in",
        "=> [app] commands echo quick-step-done",
        "=> [app] source_file data.bin",
    ] {
        assert_eq!(count(step), 1, "{step:?} once at the end:\n{last}");
    }
    assert!(
        lines.iter().all(|l| !is_spinner_line(l)),
        "a live line was left:\n{last}"
    );
    assert_eq!(count("| tick-"), 0, "output tails were left:\n{last}");
    assert_eq!(count("FINISHED"), 1, "{last}");
    assert_eq!(count("[+] Building"), 1, "one header remains:\n{last}");
    assert!(
        !last.contains("sha256:"),
        "results stay off stderr:\n{last}"
    );
    let out = std::fs::read_to_string(&stdout).unwrap();
    assert!(out.contains("sha256:"), "results on stdout: {out}");
}

/// A narrow terminal: live and finished lines are cut, never wrapped.
#[test]
fn tty_lines_fit_a_narrow_terminal() {
    let Some(base) = base("tty_lines_fit_a_narrow_terminal") else {
        return;
    };
    require_tmux();
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path(), &base);
    let stdout = t.path().join("stdout.txt");
    let width = 40;
    let tmux = Tmux::start(
        "narrow",
        width,
        20,
        &tty_command(&ctx, t.path(), "narrow", "tty", &stdout),
    );
    let mut checked = 0;
    let t0 = Instant::now();
    loop {
        // Wrapped lines show up joined (longer than the terminal) with -J.
        let joined = tmux.capture(true, true);
        for l in joined.lines() {
            if l.starts_with("=> ") || l.starts_with("[+]") || is_spinner_line(l) {
                assert!(
                    l.chars().count() < width as usize,
                    "a progress line wrapped at {width} columns: {l:?}\n{joined}"
                );
                checked += 1;
            }
        }
        if joined.contains("__END__") {
            assert!(joined.contains("__END__ 0"), "the build failed:\n{joined}");
            assert!(joined.contains('…'), "long labels are cut:\n{joined}");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(600), "no end:\n{joined}");
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(checked > 0, "no progress lines were seen");
}

/// Plain: one line per event, no escape codes; each step starts, prints
/// its lines prefixed by its number and stage, and ends once.
#[test]
fn plain_has_one_line_per_event() {
    let Some(base) = base("plain_has_one_line_per_event") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path(), &base);
    let r = build(&ctx, t.path(), "plain")
        .args(&["--progress", "plain"])
        .run()
        .ok();
    assert!(!r.stderr.contains('\x1b'), "escape codes:\n{r}");
    assert!(
        !r.stderr.contains("sha256:"),
        "results stay off stderr:\n{r}"
    );
    let mut started: BTreeMap<u64, String> = BTreeMap::new();
    let mut ended: BTreeMap<u64, usize> = BTreeMap::new();
    let mut ticks = Vec::new();
    for l in r.stderr.lines() {
        let Some(rest) = l.strip_prefix('#') else {
            continue;
        };
        let (id, rest) = rest.split_once(' ').expect("#N then text");
        let id: u64 = id.parse().unwrap_or_else(|_| panic!("a step number: {l}"));
        if let std::collections::btree_map::Entry::Vacant(v) = started.entry(id) {
            assert!(!ended.contains_key(&id), "ended before it started: {l}");
            v.insert(rest.to_string());
            continue;
        }
        assert!(
            !ended.contains_key(&id),
            "a line after the step ended: {l}\n{r}"
        );
        if rest.starts_with("DONE ") || rest.starts_with("CACHED") || rest.starts_with("ERROR") {
            *ended.entry(id).or_default() += 1;
        }
        if let Some(tick) = rest.strip_prefix("[app] tick-") {
            assert!(started[&id].starts_with("[app] commands for i"), "{l}");
            ticks.push(tick.to_string());
        }
    }
    assert_eq!(ticks, ["1", "2", "3", "4", "5", "6"], "{r}");
    assert!(
        started
            .values()
            .any(|s| s.starts_with("[app] source_file data.bin")),
        "{r}"
    );
    for (id, label) in &started {
        assert_eq!(ended.get(id), Some(&1), "{label} ends once:\n{r}");
    }
    let done = r.stderr.lines().find(|l| l.contains(" DONE ")).unwrap();
    assert!(done.split(' ').nth(2).unwrap().ends_with('s'), "{done}");
}

/// Rawjson: every line is one JSON object with the documented fields;
/// each step starts once before anything else about it and finishes once;
/// figures stay within their totals; `end` comes last.
#[test]
fn rawjson_lines_parse_and_make_sense() {
    let Some(base) = base("rawjson_lines_parse_and_make_sense") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path(), &base);
    // The environment's default, as buildx's users set it.
    let r = build(&ctx, t.path(), "json")
        .env("BUILDKIT_PROGRESS", "rawjson")
        .run()
        .ok();
    let events: Vec<Value> = r
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{r}")))
        .collect();
    check_events(&events, &r.stderr);
    let outputs: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "output")
        .map(|e| {
            assert_eq!(e["stage"], "app", "{e}");
            e["message"].as_str().unwrap()
        })
        .collect();
    assert!(
        outputs.starts_with(&["tick-1", "tick-2", "tick-3", "tick-4", "tick-5", "tick-6"]),
        "{outputs:?}"
    );
    // The files layer counted its bytes to its total.
    let copy = events
        .iter()
        .find(|e| {
            e["kind"] == "finish" && e["name"].as_str().unwrap().contains("source_file data.bin")
        })
        .expect("the COPY step finished");
    assert!(copy["total"].as_u64().unwrap() >= 4 << 20, "{copy}");
    assert_eq!(copy["current"], copy["total"], "{copy}");
}

/// The checks every rawjson stream passes.
fn check_events(events: &[Value], all: &str) {
    assert!(!events.is_empty());
    let mut state: BTreeMap<u64, &str> = BTreeMap::new();
    let mut last_ts = 0;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["v"], 1, "{e}");
        let ts = e["ts"].as_u64().expect("ts");
        assert!(ts >= last_ts, "time goes forward: {e}");
        last_ts = ts;
        let kind = e["kind"].as_str().expect("kind");
        match kind {
            "start" | "progress" | "message" | "output" | "finish" => {
                let id = e["id"].as_u64().unwrap_or_else(|| panic!("id: {e}"));
                assert!(e["name"].is_string(), "{e}");
                assert!(e["elapsed_ms"].is_u64(), "{e}");
                let st = e["status"].as_str().expect("status");
                match kind {
                    "start" => {
                        assert!(state.insert(id, "running").is_none(), "started twice: {e}");
                        assert_eq!(st, "running");
                    }
                    "finish" => {
                        assert_eq!(state.insert(id, "ended"), Some("running"), "{e}");
                        assert!(["done", "cached", "error"].contains(&st), "{e}");
                    }
                    _ => {
                        assert_eq!(state.get(&id), Some(&"running"), "{e}\n{all}");
                        assert_eq!(st, "running");
                    }
                }
                if let (Some(c), Some(t)) = (e["current"].as_u64(), e["total"].as_u64())
                    && t > 0
                {
                    assert!(c <= t, "current past total: {e}");
                }
                if let (Some(c), Some(t)) = (e["items"].as_u64(), e["items_total"].as_u64())
                    && t > 0
                {
                    assert!(c <= t, "items past total: {e}");
                }
                if let Some(s) = e.get("stage") {
                    let n = e["name"].as_str().unwrap();
                    assert!(n.starts_with(&format!("[{}]", s.as_str().unwrap())), "{e}");
                }
            }
            "log" | "warning" | "error" => assert!(e["message"].is_string(), "{e}"),
            "end" => {
                assert_eq!(i, events.len() - 1, "end comes last: {e}");
                assert_eq!(e["tasks"], e["finished"], "{e}");
                assert_eq!(e["tasks"].as_u64(), Some(state.len() as u64), "{e}");
            }
            other => panic!("unknown kind {other}: {e}"),
        }
    }
    assert_eq!(events.last().unwrap()["kind"], "end");
    assert!(
        state.values().all(|s| *s == "ended"),
        "every step finished:\n{all}"
    );
}

/// Quiet (`-q`, `--progress quiet`, `none`): nothing on stderr for a clean
/// build; the flag wins over the environment, IMGBUILD_PROGRESS over
/// BUILDKIT_PROGRESS; a bad mode is a usage error naming where it came from.
#[test]
fn quiet_modes_and_defaults() {
    let Some(base) = base("quiet_modes_and_defaults") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path(), &base);
    let r = build(&ctx, t.path(), "q")
        .env("BUILDKIT_PROGRESS", "plain")
        .args(&["--progress", "quiet"])
        .run()
        .ok();
    assert_eq!(r.stderr, "", "{r}");
    assert!(r.stdout.contains("sha256:"), "{r}");
    // Cached now: plain from IMGBUILD_PROGRESS, though buildx's says json.
    let r = build(&ctx, t.path(), "q")
        .env("IMGBUILD_PROGRESS", "plain")
        .env("BUILDKIT_PROGRESS", "rawjson")
        .run()
        .ok();
    assert!(r.stderr.lines().any(|l| l.starts_with("#1 ")), "{r}");
    assert!(!r.stderr.contains("{\""), "{r}");
    let r = build(&ctx, t.path(), "q")
        .args(&["--progress", "none"])
        .run()
        .ok();
    assert_eq!(r.stderr, "", "{r}");
    let r = build(&ctx, t.path(), "q")
        .env("IMGBUILD_PROGRESS", "fancy")
        .run();
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("IMGBUILD_PROGRESS") && r.stderr.contains("\"fancy\""),
        "{r}"
    );
}

/// `push --progress rawjson`: each blob is a step with its size, counted
/// by a step for all of them; a second push finds them there.
#[test]
fn rawjson_push_reports_each_blob() {
    use support::registry::{Registry, RegistryOptions};
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/full-build");
    let layout = t.path().join("out");
    ib(&["build"])
        .path_arg(&fixture)
        .cache(&t.path().join("store"))
        .oci_out(&layout)
        .arg("-q")
        .run()
        .ok();
    let target = format!("{}/p/app:v1", r.host());
    let repo = format!("[{}/p/app]", r.host());
    for (round, word) in [(0, "uploaded"), (1, "already there")] {
        let p = ib(&["push", &format!("oci:{}:latest", layout.display()), &target])
            .cache(&t.path().join("store"))
            .args(&["--progress", "rawjson"])
            .run()
            .ok();
        let events: Vec<Value> = p
            .stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        check_events(&events, &p.stderr);
        let finished = |needle: &str| -> Vec<&Value> {
            events
                .iter()
                .filter(|e| e["kind"] == "finish" && e["name"].as_str().unwrap().contains(needle))
                .collect()
        };
        let blobs: Vec<&Value> = finished(&format!("{repo} push "))
            .into_iter()
            .filter(|e| {
                let n = e["name"].as_str().unwrap();
                !n.ends_with(" push blobs") && !n.ends_with(" manifest and tags")
            })
            .collect();
        // A layer and a config.
        assert_eq!(blobs.len(), 2, "round {round}:\n{}", p.stderr);
        for b in &blobs {
            assert_eq!(b["stage"], repo.trim_matches(&['[', ']'][..]), "{b}");
            assert!(b["total"].as_u64().unwrap() > 0, "{b}");
            assert!(b["message"].as_str().unwrap().starts_with(word), "{b}");
        }
        let all = finished(&format!("{repo} push blobs"));
        assert_eq!(all.len(), 1, "{}", p.stderr);
        assert_eq!(all[0]["items"], 2, "{}", all[0]);
        assert_eq!(all[0]["items_total"], 2, "{}", all[0]);
        assert_eq!(all[0]["current"], all[0]["total"], "{}", all[0]);
        assert_eq!(finished("push manifest and tags").len(), 1, "{}", p.stderr);
        assert!(p.stdout.contains("sha256:"), "{p}");
    }
}

/// A failed step in rawjson: its `finish` says `error`, an `error` event
/// carries the message before `end`, and the usual `error:` line closes.
#[test]
fn rawjson_reports_a_failed_step() {
    let Some(base) = base("rawjson_reports_a_failed_step") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM oci:{}:latest AS app\nRUN echo about-to-fail && exit 3\n",
            base.display()
        ),
    );
    let r = build(&ctx, t.path(), "fail")
        .args(&["--progress", "rawjson"])
        .run();
    assert_eq!(r.code, 7, "{r}");
    // After the events: the `error:` line and the step's last output.
    let mut lines: Vec<&str> = r.stderr.lines().collect();
    while !lines.last().unwrap().starts_with('{') {
        lines.pop();
    }
    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{r}")))
        .collect();
    check_events(&events, &r.stderr);
    let failed = events
        .iter()
        .find(|e| e["kind"] == "finish" && e["status"] == "error")
        .unwrap_or_else(|| panic!("no failed step:\n{r}"));
    assert!(
        failed["name"].as_str().unwrap().contains("about-to-fail"),
        "{failed}"
    );
    let err = events
        .iter()
        .find(|e| e["kind"] == "error")
        .expect("an error event");
    assert!(
        err["message"].as_str().unwrap().contains("exit status 3"),
        "{err}"
    );
    assert!(
        r.stderr.contains("\nerror: ") && r.stderr.contains("about-to-fail"),
        "{r}"
    );
}
