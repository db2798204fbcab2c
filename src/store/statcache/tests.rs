use super::*;
use crate::store::Store;

/// A stat from long ago (the cache keeps only files not changed lately).
fn old(size: u64, ino: u64) -> Stamp {
    Stamp {
        size,
        mtime_ns: 1_600_000_000_000_000_000,
        ctime_ns: 1_600_000_000_000_000_001,
        ino,
    }
}

fn setup() -> (tempfile::TempDir, Store, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(&t.path().join("store")).unwrap();
    let p = store.stat_path(t.path());
    (t, store, p)
}

#[test]
fn a_saved_cache_answers_after_loading() {
    let (_t, store, p) = setup();
    let c = StatCache::load(p.clone());
    assert_eq!(c.lookup("a", old(1, 1)), None);
    let names: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!("d{}/f{i}", i % 7).into_bytes())
        .chain([b"odd\xff\xfe".to_vec(), b"new\nline".to_vec(), Vec::new()])
        .collect();
    for (i, n) in names.iter().enumerate() {
        c.insert(n, old(i as u64, i as u64), Digest::of(n));
    }
    c.save(&store).unwrap();
    let c = StatCache::load(p);
    for (i, n) in names.iter().enumerate() {
        assert_eq!(c.lookup(n, old(i as u64, i as u64)), Some(Digest::of(n)));
    }
    assert_eq!(c.lookup("d0/f1", old(1, 1)), None, "not a name it holds");
}

#[test]
fn a_changed_stat_is_a_miss() {
    let (_t, store, p) = setup();
    let c = StatCache::load(p.clone());
    c.insert("f", old(5, 9), Digest::of(b"x"));
    c.save(&store).unwrap();
    let c = StatCache::load(p);
    // Edited in place without a size change: the mtime moved.
    let mut s = old(5, 9);
    s.mtime_ns += 1;
    assert_eq!(c.lookup("f", s), None);
    // Replaced by another file with the same times (a new inode).
    assert_eq!(c.lookup("f", old(5, 10)), None);
    let mut s = old(5, 9);
    s.ctime_ns += 1_000_000_000;
    assert_eq!(c.lookup("f", s), None, "ctime too");
    assert_eq!(c.lookup("f", old(6, 9)), None);
    assert_eq!(c.lookup("f", old(5, 9)), Some(Digest::of(b"x")));
}

#[test]
fn files_changed_lately_are_not_kept() {
    let (t, store, p) = setup();
    let f = t.path().join("f");
    std::fs::write(&f, "x").unwrap();
    let meta = std::fs::metadata(&f).unwrap();
    let c = StatCache::load(p.clone());
    c.insert("f", &meta, Digest::of(b"x"));
    c.save(&store).unwrap();
    assert!(!p.exists(), "nothing to keep: no file");
    let c = StatCache::load(p);
    assert_eq!(c.lookup("f", &meta), None);
}

#[test]
fn nothing_new_leaves_the_file_alone() {
    let (_t, store, p) = setup();
    let c = StatCache::load(p.clone());
    c.insert("a", old(1, 1), Digest::of(b"a"));
    c.insert("b", old(2, 2), Digest::of(b"b"));
    c.save(&store).unwrap();
    let ino = std::fs::metadata(&p).unwrap().ino();
    // One entry confirmed, one not (a deleted file): no rewrite.
    let c = StatCache::load(p.clone());
    assert!(c.lookup("a", old(1, 1)).is_some());
    c.save(&store).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().ino(), ino);
    // A new entry rewrites it, keeping both old ones.
    c.insert("c", old(3, 3), Digest::of(b"c"));
    c.save(&store).unwrap();
    assert_ne!(std::fs::metadata(&p).unwrap().ino(), ino);
    let c = StatCache::load(p);
    for (n, i) in [("a", 1), ("b", 2), ("c", 3)] {
        assert_eq!(c.lookup(n, old(i, i)), Some(Digest::of(n.as_bytes())));
    }
}

/// A run that only confirmed entries marks the file used (so `cache
/// prune` by age keeps it) without writing it; one that confirmed none
/// leaves even its time alone.
#[test]
fn a_run_that_confirmed_entries_marks_the_file_used() {
    let (_t, store, p) = setup();
    let c = StatCache::load(p.clone());
    c.insert("a", old(1, 1), Digest::of(b"a"));
    c.save(&store).unwrap();
    let long_ago = 1_000_000_000;
    crate::util::fs::set_mtime(&p, long_ago).unwrap();
    let ino = std::fs::metadata(&p).unwrap().ino();
    let mtime = || std::fs::metadata(&p).unwrap().mtime();
    // Nothing confirmed: the time stays.
    let c = StatCache::load(p.clone());
    assert_eq!(c.lookup("a", old(2, 1)), None);
    c.save(&store).unwrap();
    assert_eq!(mtime(), long_ago);
    // Confirmed: the time is now, the file the same.
    let c = StatCache::load(p.clone());
    assert!(c.lookup("a", old(1, 1)).is_some());
    c.save(&store).unwrap();
    assert!(mtime() > long_ago + 1_000_000, "{}", mtime());
    assert_eq!(std::fs::metadata(&p).unwrap().ino(), ino);
    let c = StatCache::load(p);
    assert_eq!(c.lookup("a", old(1, 1)), Some(Digest::of(b"a")));
}

#[test]
fn a_new_hash_replaces_the_old_one() {
    let (_t, store, p) = setup();
    let c = StatCache::load(p.clone());
    c.insert("a", old(1, 1), Digest::of(b"1"));
    c.save(&store).unwrap();
    let c = StatCache::load(p.clone());
    assert_eq!(c.lookup("a", old(1, 2)), None);
    c.insert("a", old(1, 2), Digest::of(b"2"));
    c.save(&store).unwrap();
    let c = StatCache::load(p);
    assert_eq!(c.lookup("a", old(1, 2)), Some(Digest::of(b"2")));
    assert_eq!(c.lookup("a", old(1, 1)), None);
}

#[test]
fn stale_entries_go_when_they_outnumber_live_ones() {
    let (_t, store, p) = setup();
    let c = StatCache::load(p.clone());
    for i in 0..10 {
        c.insert(format!("f{i}"), old(i, i), Digest::of(b"x"));
    }
    c.save(&store).unwrap();
    let c = StatCache::load(p.clone());
    assert!(c.lookup("f0", old(0, 0)).is_some());
    c.insert("g", old(1, 1), Digest::of(b"g"));
    c.save(&store).unwrap();
    let c = StatCache::load(p);
    assert!(c.lookup("f0", old(0, 0)).is_some());
    assert!(c.lookup("g", old(1, 1)).is_some());
    assert_eq!(c.lookup("f1", old(1, 1)), None, "9 stale against 2 live");
}

#[test]
fn an_old_format_or_corrupt_file_is_an_empty_cache() {
    let (_t, store, p) = setup();
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    // The text format of earlier versions.
    let line = format!(
        "{} 1 1600000000000000000 1600000000000000001 1 a\n",
        Digest::of(b"a").hex()
    );
    std::fs::write(&p, line).unwrap();
    assert_eq!(StatCache::load(p.clone()).lookup("a", old(1, 1)), None);
    let c = StatCache::load(p.clone());
    for i in 0..50 {
        c.insert(format!("f{i}"), old(i, i), Digest::of(b"x"));
    }
    c.save(&store).unwrap();
    let good = std::fs::read(&p).unwrap();
    assert!(StatCache::load(p.clone()).lookup("f3", old(3, 3)).is_some());
    // Every single flipped byte, and every cut, is caught.
    for at in 0..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        std::fs::write(&p, &bad).unwrap();
        let c = StatCache::load(p.clone());
        assert_eq!(c.count, 0, "byte {at} flipped");
        assert_eq!(c.lookup("f3", old(3, 3)), None);
    }
    for len in [0, 7, 8, 24, 100, good.len() - 1] {
        std::fs::write(&p, &good[..len]).unwrap();
        assert_eq!(StatCache::load(p.clone()).count, 0, "cut at {len}");
    }
    std::fs::write(&p, [good.as_slice(), b"x"].concat()).unwrap();
    assert_eq!(StatCache::load(p.clone()).count, 0, "trailing byte");
    // A corrupt file is replaced by a good one on the next save.
    let c = StatCache::load(p.clone());
    c.insert("z", old(1, 1), Digest::of(b"z"));
    c.save(&store).unwrap();
    assert!(StatCache::load(p).lookup("z", old(1, 1)).is_some());
}

#[test]
fn lookups_in_any_order_with_or_without_a_hint_find_every_entry() {
    let (_t, store, p) = setup();
    let c = StatCache::load(p.clone());
    let names: Vec<Vec<u8>> = (0..500)
        .map(|i| format!("d{}/f{i:03}", i % 5).into_bytes())
        .collect();
    for (i, n) in names.iter().enumerate() {
        c.insert(n, old(1, i as u64), Digest::of(n));
    }
    c.save(&store).unwrap();
    let c = StatCache::load(p);
    let mut sorted = names.clone();
    sorted.sort();
    // In the file's order one hint finds each at the hint.
    let mut hint = 0;
    for n in &sorted {
        let i = names.iter().position(|m| m == n).unwrap();
        let at = hint;
        assert_eq!(
            c.lookup_near(&mut hint, n, old(1, i as u64)),
            Some(Digest::of(n))
        );
        assert_eq!(hint, at + 1, "found at the hint");
    }
    // Backwards, in the insertion order and with absent names between:
    // the hint is wrong each time and the answer still right.
    let mut hint = 0;
    for (i, n) in names
        .iter()
        .enumerate()
        .rev()
        .chain(names.iter().enumerate())
    {
        assert_eq!(
            c.lookup_near(&mut hint, n, old(1, i as u64)),
            Some(Digest::of(n))
        );
        let mut absent = n.clone();
        absent.push(b'x');
        assert_eq!(c.lookup_near(&mut hint, &absent, old(1, i as u64)), None);
    }
    for far in [0, 499, 500, usize::MAX] {
        let mut hint = far;
        assert_eq!(
            c.lookup_near(&mut hint, "d0/f000", old(1, 0)),
            Some(Digest::of(b"d0/f000"))
        );
        assert_eq!(c.lookup_near(&mut hint, "a", old(1, 0)), None, "before all");
        assert_eq!(hint, 0);
        assert_eq!(c.lookup_near(&mut hint, "z", old(1, 0)), None, "after all");
        assert_eq!(hint, 500);
    }
}

#[test]
fn a_file_out_of_order_misses_but_never_answers_wrong() {
    let (_t, store, p) = setup();
    let rows = [
        (&b"c"[..], old(1, 1), Digest::of(b"c")),
        (b"a", old(1, 2), Digest::of(b"a")),
        (b"b", old(1, 3), Digest::of(b"b")),
    ];
    store.write_atomic(&p, &encode(&rows)).unwrap();
    let c = StatCache::load(p);
    assert_eq!(c.count, 3);
    for (name, stamp, d) in rows {
        let got = c.lookup(name, stamp);
        assert!(got.is_none() || got == Some(d), "{name:?}: {got:?}");
        let mut hint = 0;
        let got = c.lookup_near(&mut hint, name, old(9, 9));
        assert_eq!(got, None, "a stamp that is not the file's");
    }
    // The record at the hint is found by its name.
    let mut hint = 1;
    assert_eq!(
        c.lookup_near(&mut hint, "a", old(1, 2)),
        Some(Digest::of(b"a"))
    );
}
