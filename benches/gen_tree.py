#!/usr/bin/env python3
"""Deterministic generator of a synthetic source tree for the end-to-end benchmarks.

Usage:
    gen_tree.py OUT_DIR [--files N] [--total-mb M] [--seed S] [--preset big|project]

The tree looks like a real project checkout:

* mostly small text files (300 B .. 16 KiB, log-uniform): Python-like and C-like
  source, JSON documents and Markdown, with the compressibility of real text;
* some medium files (100 KiB .. 2 MiB): big text files (generated sources,
  JSON dumps, logs) and binary blobs;
* a few large binaries (tens of MB), built from 64 KiB chunks that are random,
  low-entropy, repeated patterns or zeros, so they are only partially compressible;
* nested directories several levels deep, a few relative symlinks (to files and
  one to a directory, none dangling, no loops).

Everything is derived from a single seed (pure stdlib, `random.Random(seed)`),
including file modes and modification times, so two runs with the same
arguments produce byte-identical trees. `--files` counts regular files (symlinks
come on top); `--total-mb` is the total size of the regular files in MB
(10^6 bytes), met exactly.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time

MB = 1_000_000
KIB = 1024
MIB = 1024 * 1024

SMALL_MIN, SMALL_MAX = 300, 16 * KIB
MEDIUM_MIN, MEDIUM_MAX = 100 * KIB, 2 * MIB
LARGE_TARGET = 64 * MB  # typical size of one large binary
CHUNK = 64 * KIB
WRITE_BUF = 4 * MIB
FIXED_MTIME = 1_700_000_000  # 2023-11-14, fixed for reproducibility

PRESETS = {
    "big": (50_000, 1000),
    "project": (10_000, 100),
}

SYLLABLES = (
    "ab ac ad al an ar as at ba be bi bo bu ca ce ch ci co cu da de di do du "
    "el em en er es et ex fa fe fi fo ga ge gi go gr ha he hi ho id il im in "
    "io is it ja ka ke ki ko la le li lo lu ma me mi mo mu na ne ni no nu ob "
    "od ol om on op or os ot pa pe pi po pr pu ra re ri ro ru sa se si so st "
    "su ta te th ti to tr tu ul um un ur us va ve vi vo wa we wi xa yo za ze"
).split()

TOP_DIRS = ["src", "lib", "tests", "docs", "tools", "vendor", "assets", "data",
            "scripts", "third_party", "examples", "config"]

PY_KEYWORDS = ["self", "None", "True", "False", "len", "range", "dict", "list",
               "str", "int", "value", "result", "data", "path", "config", "items"]
C_TYPES = ["int", "size_t", "uint8_t", "uint32_t", "uint64_t", "char *", "void *",
           "const char *", "struct buf *", "bool", "double", "ssize_t"]


class Vocab:
    """Pseudo-words with a Zipf-like frequency distribution."""

    def __init__(self, rng: random.Random, n_words: int = 2500) -> None:
        seen: set[str] = set()
        words: list[str] = []
        while len(words) < n_words:
            w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))
            if w not in seen:
                seen.add(w)
                words.append(w)
        self.words = words
        weights = [1.0 / (i + 1) ** 0.9 for i in range(n_words)]
        acc = 0.0
        self.cum = []
        for w in weights:
            acc += w
            self.cum.append(acc)
        self.rng = rng

    def pick(self, k: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cum, k=k)

    def ident(self) -> str:
        parts = self.pick(self.rng.randint(1, 3))
        return "_".join(parts)

    def camel(self) -> str:
        return "".join(p.capitalize() for p in self.pick(self.rng.randint(1, 3)))

    def sentence(self, lo: int = 4, hi: int = 14) -> str:
        return " ".join(self.pick(self.rng.randint(lo, hi)))


# --------------------------------------------------------------------------
# text corpora: one per kind; small files are line-aligned slices of them


def py_lines(v: Vocab, rng: random.Random, target: int) -> list[str]:
    out: list[str] = []
    size = 0
    indent = 0
    r = rng.random
    ri = rng.randint
    while size < target:
        x = r()
        pad = "    " * indent
        if x < 0.05:
            line = f"\n\nclass {v.camel()}({v.camel()}):\n    \"\"\"{v.sentence()}.\"\"\"\n"
            indent = 1
        elif x < 0.13:
            args = ", ".join(v.ident() for _ in range(ri(0, 4)))
            line = f"\n{'    ' if indent else ''}def {v.ident()}(self{', ' + args if args else ''}):\n"
            indent = 2 if indent else 1
        elif x < 0.20:
            line = f"{pad}# {v.sentence()}\n"
        elif x < 0.33:
            line = f"{pad}if {v.ident()} is not None and {v.ident()} > {ri(0, 1000)}:\n{pad}    {v.ident()} = {v.ident()}[{ri(0, 16)}:{ri(16, 64)}]\n"
        elif x < 0.40:
            line = f"{pad}for {v.ident()} in {rng.choice(PY_KEYWORDS)}.{v.ident()}():\n{pad}    {v.ident()}.append({v.ident()})\n"
        elif x < 0.47:
            line = f"{pad}return {v.ident()}({v.ident()}, {rng.choice(PY_KEYWORDS)}={ri(0, 99)})\n"
            indent = max(indent - 1, 0)
        elif x < 0.52:
            line = f"import {v.ident()}\nfrom {v.ident()}.{v.ident()} import {v.camel()}, {v.ident()}\n"
        elif x < 0.60:
            line = f"{pad}raise {v.camel()}Error(\"{v.sentence(3, 8)}: %s\" % {v.ident()})\n"
        else:
            line = f"{pad}{v.ident()} = {rng.choice(PY_KEYWORDS)}.{v.ident()}({v.ident()}, \"{v.ident()}\", {ri(0, 4096)})\n"
        out.append(line)
        size += len(line)
    return out


def c_lines(v: Vocab, rng: random.Random, target: int) -> list[str]:
    out: list[str] = []
    size = 0
    r = rng.random
    ri = rng.randint
    depth = 0
    while size < target:
        x = r()
        pad = "    " * depth
        if x < 0.05:
            line = f"#include <{v.ident()}/{v.ident()}.h>\n"
        elif x < 0.08:
            line = f"#define {v.ident().upper()} {ri(0, 65535):#x}\n"
        elif x < 0.16:
            args = ", ".join(f"{rng.choice(C_TYPES)} {v.ident()}" for _ in range(ri(1, 4)))
            line = f"\n{'}' + chr(10) if depth else ''}static {rng.choice(C_TYPES)} {v.ident()}({args})\n{{\n"
            depth = 1
        elif x < 0.24:
            line = f"{pad}/* {v.sentence()} */\n"
        elif x < 0.36:
            line = f"{pad}if ({v.ident()}->{v.ident()} == {v.ident().upper()} && {v.ident()} < {ri(0, 512)}) {{\n{pad}    return -{ri(1, 40)};\n{pad}}}\n"
        elif x < 0.44:
            line = f"{pad}for (size_t i = 0; i < {v.ident()}->len; i++) {{\n{pad}    {v.ident()}[i] ^= {v.ident()}(i);\n{pad}}}\n"
        elif x < 0.52:
            line = f"{pad}memcpy({v.ident()}, {v.ident()} + {ri(0, 64)}, sizeof(struct {v.ident()}));\n"
        else:
            line = f"{pad}{rng.choice(C_TYPES)} {v.ident()} = {v.ident()}({v.ident()}, {ri(0, 4096)});\n"
        out.append(line)
        size += len(line)
    return out


def json_lines(v: Vocab, rng: random.Random, target: int) -> list[str]:
    out: list[str] = []
    size = 0
    ri = rng.randint
    while size < target:
        tags = ", ".join(f'"{t}"' for t in v.pick(ri(0, 4)))
        line = (
            f'    {{"id": {ri(1, 10_000_000)}, "name": "{v.ident()}", '
            f'"kind": "{v.camel()}", "tags": [{tags}], '
            f'"value": {rng.random() * 1000:.3f}, "enabled": {"true" if ri(0, 1) else "false"}, '
            f'"description": "{v.sentence(2, 10)}"}},\n'
        )
        out.append(line)
        size += len(line)
    return out


def md_lines(v: Vocab, rng: random.Random, target: int) -> list[str]:
    out: list[str] = []
    size = 0
    while size < target:
        x = rng.random()
        if x < 0.1:
            line = f"\n## {v.sentence(2, 5).capitalize()}\n\n"
        elif x < 0.25:
            line = f"- `{v.ident()}`: {v.sentence(3, 10)}\n"
        else:
            line = v.sentence(8, 20).capitalize() + ". " + v.sentence(5, 15) + ".\n"
        out.append(line)
        size += len(line)
    return out


class Corpus:
    def __init__(self, text: str) -> None:
        self.data = text.encode()

    def slice(self, rng: random.Random, size: int) -> bytes:
        """Line-aligned slice of about `size` bytes (wraps around)."""
        d = self.data
        n = len(d)
        if size >= n:
            reps = size // n + 1
            return (d * reps)[:size]
        start = rng.randrange(0, n - size)
        nl = d.find(b"\n", start, start + 1024)
        if nl != -1 and nl + 1 + size <= n:
            start = nl + 1
        return d[start:start + size]


TEXT_KINDS = [
    # (kind, extension, weight)
    ("py", ".py", 30),
    ("c", ".c", 22),
    ("c", ".h", 10),
    ("json", ".json", 18),
    ("md", ".md", 10),
    ("py", ".sh", 4),
    ("c", ".rs", 6),
]
MEDIUM_TEXT_EXT = [("json", ".json"), ("c", ".c"), ("md", ".log"), ("py", ".py")]
BIN_EXT_MEDIUM = [".png", ".so", ".db", ".woff2", ".pyc", ".a", ".o"]
BIN_EXT_LARGE = [".bin", ".img", ".pack", ".tar", ".sqlite"]


def text_file(kind: str, rel: str, body: bytes, size: int) -> bytes:
    if kind == "json":
        head = f'{{"path": "{rel}", "items": [\n'.encode()
        tail = b"    {}\n]}\n"
    elif kind == "py":
        head = f"#!/usr/bin/env python3\n# {rel}\n\n".encode()
        tail = b"\n"
    elif kind == "c":
        head = f"/* {rel} */\n\n".encode()
        tail = b"\n"
    else:
        head = f"# {rel}\n\n".encode()
        tail = b"\n"
    room = max(size - len(head) - len(tail), 0)
    body = body[:room]
    cut = body.rfind(b"\n")
    body = body[:cut + 1] if cut != -1 else b""
    # pad with blanks up to the exact size, keeping whole lines (valid JSON)
    data = head + body + b" " * (room - len(body)) + tail
    return data[:size]


# --------------------------------------------------------------------------
# binary content


class BinGen:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        alphabet = bytes(rng.sample(range(256), 16))
        self.lowent = bytes(alphabet[i % 16] for i in range(256))

    def chunk(self, n: int) -> bytes:
        rng = self.rng
        x = rng.random()
        if x < 0.45:  # incompressible (already compressed data)
            return rng.randbytes(n)
        if x < 0.70:  # repeated pattern (tables, padding, duplicated records)
            pat = rng.randbytes(rng.randint(64, 4096))
            return (pat * (n // len(pat) + 1))[:n]
        if x < 0.90:  # low-entropy bytes (~4 bits/byte)
            return rng.randbytes(n).translate(self.lowent)
        return bytes(n)  # zeros (sparse regions)

    def write(self, f, size: int) -> None:
        buf = bytearray()
        left = size
        while left > 0:
            n = min(CHUNK, left)
            buf += self.chunk(n)
            left -= n
            if len(buf) >= WRITE_BUF:
                f.write(buf)
                buf.clear()
        if buf:
            f.write(buf)


# --------------------------------------------------------------------------
# layout


def log_uniform(rng: random.Random, lo: float, hi: float) -> int:
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def plan_sizes(rng: random.Random, n_files: int, total: int):
    """Return (small, medium, large) lists of sizes summing exactly to total."""
    n_large = min(8, round(total * 0.3 / LARGE_TARGET))
    if n_large == 0 and total >= 20 * MB and n_files >= 100:
        n_large = 1
    avg_medium = (MEDIUM_MAX - MEDIUM_MIN) / math.log(MEDIUM_MAX / MEDIUM_MIN)
    n_medium = round(total * 0.45 / avg_medium)
    n_medium = min(n_medium, max(n_files // 20, 0))
    n_large = min(n_large, max(n_files - n_medium - 1, 0))
    n_small = n_files - n_medium - n_large

    small = [log_uniform(rng, SMALL_MIN, SMALL_MAX) for _ in range(n_small)]
    rest = total - sum(small)
    # not enough room for the medium/large files: turn them into small ones
    while (n_medium or n_large) and rest < n_medium * MEDIUM_MIN + n_large * 4 * MIB:
        if n_large:
            n_large -= 1
        else:
            n_medium -= 1
        s = log_uniform(rng, SMALL_MIN, SMALL_MAX)
        small.append(s)
        rest -= s
    if rest < 0 or (not n_medium and not n_large):
        # only small files: scale them to the exact total
        if small:
            factor = total / max(sum(small), 1)
            small = [max(1, int(s * factor)) for s in small]
            small[-1] += total - sum(small)
            if small[-1] < 0:
                raise SystemExit("--total-mb too small for --files")
        return small, [], []

    medium: list[int] = []
    if n_medium:
        budget = rest * (0.6 if n_large else 1.0)
        raw = [log_uniform(rng, MEDIUM_MIN, MEDIUM_MAX) for _ in range(n_medium)]
        factor = budget / sum(raw)
        medium = [max(MEDIUM_MIN // 2, int(s * factor)) for s in raw]
        if not n_large:
            medium[-1] += rest - sum(medium)
    large: list[int] = []
    if n_large:
        left = rest - sum(medium)
        w = [rng.uniform(0.5, 1.5) for _ in range(n_large)]
        large = [int(left * x / sum(w)) for x in w]
        large[-1] += left - sum(large)
    assert sum(small) + sum(medium) + sum(large) == total
    return small, medium, large


def make_dirs(rng: random.Random, v: Vocab, n_dirs: int, max_depth: int = 10):
    dirs = [""]  # relative paths; "" is the root
    depth = {"": 0}
    children: dict[str, set[str]] = {"": set()}
    for name in TOP_DIRS[: max(1, min(len(TOP_DIRS), n_dirs))]:
        dirs.append(name)
        depth[name] = 1
        children[""].add(name)
        children[name] = set()
    while len(dirs) < n_dirs:
        # favour recent (deeper) directories a bit to get real nesting
        if rng.random() < 0.5:
            parent = dirs[rng.randrange(max(1, len(dirs) - 50), len(dirs))]
        else:
            parent = dirs[rng.randrange(1, len(dirs))] if len(dirs) > 1 else ""
        if depth[parent] >= max_depth:
            continue
        name = v.ident()
        if name in children[parent]:
            continue
        children[parent].add(name)
        path = f"{parent}/{name}" if parent else name
        dirs.append(path)
        depth[path] = depth[parent] + 1
        children[path] = set()
    return dirs, depth


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="big",
                    help="default --files/--total-mb: big = 50000 files/1000 MB, "
                         "project = 10000 files/100 MB")
    ap.add_argument("--files", type=int, default=None, help="number of regular files")
    ap.add_argument("--total-mb", type=float, default=None,
                    help="total size of regular files, MB (10^6 bytes)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--force", action="store_true",
                    help="allow a non-empty OUT_DIR (files are overwritten, nothing removed)")
    ap.add_argument("--small", metavar="DIRSxFILES", default=None,
                    help="instead: a flat tree of DIRS folders of FILES tiny source files "
                         "each (--file-bytes on average), the shape of vendored code")
    ap.add_argument("--file-bytes", type=int, default=40,
                    help="average size of a --small tree's files [40]")
    args = ap.parse_args()
    if args.small is not None:
        try:
            n_dirs, per_dir = (int(x) for x in args.small.lower().split("x"))
        except ValueError:
            ap.error("--small takes DIRSxFILES, e.g. 400x500")
        return small_tree(os.path.abspath(args.out_dir), n_dirs, per_dir, args.file_bytes,
                          args.seed, args.force, ap)

    n_files = args.files if args.files is not None else PRESETS[args.preset][0]
    total = int((args.total_mb if args.total_mb is not None else PRESETS[args.preset][1]) * MB)
    if n_files < 1 or total < n_files:
        ap.error("need --files >= 1 and --total-mb large enough for one byte per file")

    out = os.path.abspath(args.out_dir)
    if os.path.isdir(out) and os.listdir(out) and not args.force:
        ap.error(f"{out} exists and is not empty (use --force)")
    t0 = time.monotonic()

    rng = random.Random(args.seed)
    v = Vocab(random.Random(rng.getrandbits(64)))
    small, medium, large = plan_sizes(random.Random(rng.getrandbits(64)), n_files, total)

    # corpora, big enough to make the files diverse but cheap to build
    small_bytes = sum(small) + sum(medium) * 0.4
    corpus_target = int(min(8 * MIB, max(256 * KIB, small_bytes / 8)))
    crng = random.Random(rng.getrandbits(64))
    corpora = {
        "py": Corpus("".join(py_lines(v, crng, corpus_target))),
        "c": Corpus("".join(c_lines(v, crng, corpus_target))),
        "json": Corpus("".join(json_lines(v, crng, corpus_target // 2))),
        "md": Corpus("".join(md_lines(v, crng, corpus_target // 2))),
    }

    lrng = random.Random(rng.getrandbits(64))
    n_dirs = max(len(TOP_DIRS) + 20, n_files // 25)
    dirs, depth = make_dirs(lrng, v, n_dirs)
    used: dict[str, set[str]] = {d: set() for d in dirs}

    def new_path(ext: str) -> str:
        while True:
            d = dirs[lrng.randrange(len(dirs))]
            name = v.ident() + ext
            if name not in used[d]:
                used[d].add(name)
                return f"{d}/{name}" if d else name

    kinds = [(k, e) for k, e, _ in TEXT_KINDS]
    kind_w = [w for _, _, w in TEXT_KINDS]
    entries = []  # (relpath, class, size, kind)
    for size in small:
        kind, ext = lrng.choices(kinds, weights=kind_w)[0]
        entries.append((new_path(ext), "text", size, kind))
    for size in medium:
        if lrng.random() < 0.4:
            kind, ext = lrng.choice(MEDIUM_TEXT_EXT)
            entries.append((new_path(ext), "text", size, kind))
        else:
            entries.append((new_path(lrng.choice(BIN_EXT_MEDIUM)), "bin", size, ""))
    for size in large:
        entries.append((new_path(lrng.choice(BIN_EXT_LARGE)), "bin", size, ""))
    lrng.shuffle(entries)

    os.makedirs(out, exist_ok=True)
    for d in dirs[1:]:
        os.makedirs(os.path.join(out, d), exist_ok=True)

    frng = random.Random(rng.getrandbits(64))
    bingen = BinGen(random.Random(rng.getrandbits(64)))
    written = 0
    for rel, cls, size, kind in entries:
        path = os.path.join(out, rel)
        with open(path, "wb", buffering=0) as f:
            if cls == "text":
                body = corpora[kind].slice(frng, size)
                data = text_file(kind, rel, body, size)
                f.write(data)
            else:
                bingen.write(f, size)
        executable = rel.endswith(".sh") or (rel.endswith(".py") and frng.random() < 0.1)
        os.chmod(path, 0o755 if executable else 0o644)
        written += size

    # a few symlinks: relative links to files, and one to a directory
    srng = random.Random(rng.getrandbits(64))
    n_links = max(2, min(50, n_files // 2000))
    links = []
    file_paths = [e[0] for e in entries]
    for i in range(n_links - 1):
        target = file_paths[srng.randrange(len(file_paths))]
        d = dirs[srng.randrange(len(dirs))]
        name = f"link_{i}_{os.path.basename(target)}"
        if name in used[d]:
            continue
        used[d].add(name)
        link = f"{d}/{name}" if d else name
        rel_target = os.path.relpath(target, d if d else ".")
        os.symlink(rel_target, os.path.join(out, link))
        links.append(link)
    deep = [d for d in dirs if depth[d] >= 2] or [d for d in dirs if d]
    if deep:
        # placed at the top level, pointing below it: never a loop
        target = deep[srng.randrange(len(deep))]
        os.symlink(target, os.path.join(out, "shortcut"))
        links.append("shortcut")

    for link in links:
        os.utime(os.path.join(out, link), (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
    for rel, *_ in entries:
        os.utime(os.path.join(out, rel), (FIXED_MTIME, FIXED_MTIME))
    for d in sorted(dirs, key=lambda p: -depth[p]):
        p = os.path.join(out, d) if d else out
        os.chmod(p, 0o755)
        os.utime(p, (FIXED_MTIME, FIXED_MTIME))

    dt = time.monotonic() - t0
    print(
        f"gen_tree: {out}: {len(entries)} files ({len(small)} small, {len(medium)} medium, "
        f"{len(large)} large), {len(dirs)} dirs (max depth {max(depth.values())}), "
        f"{len(links)} symlinks, {written} bytes ({written / MB:.1f} MB) in {dt:.1f} s",
        file=sys.stderr,
    )
    return 0


def small_tree(out: str, n_dirs: int, per_dir: int, avg: int, seed: int, force: bool, ap) -> int:
    """DIRS folders of FILES text files of avg +- 25 % bytes, fixed modes and mtimes."""
    if n_dirs < 1 or per_dir < 1 or avg < 4:
        ap.error("--small needs at least one folder, one file and --file-bytes >= 4")
    if os.path.isdir(out) and os.listdir(out) and not force:
        ap.error(f"{out} exists and is not empty (use --force)")
    t0 = time.monotonic()
    rng = random.Random(seed)
    v = Vocab(random.Random(rng.getrandbits(64)))
    written = 0
    for d in range(n_dirs):
        dp = os.path.join(out, f"pkg{d:04d}")
        os.makedirs(dp, exist_ok=True)
        for f in range(per_dir):
            size = rng.randint(avg - avg // 4, avg + avg // 4)
            words = []
            while sum(len(w) + 1 for w in words) < size:
                words.append(v.ident())
            data = (" ".join(words).encode() + b"\n")[-size:]
            p = os.path.join(dp, f"m{f:04d}.py")
            with open(p, "wb") as fh:
                fh.write(data)
            os.chmod(p, 0o644)
            os.utime(p, (FIXED_MTIME, FIXED_MTIME))
            written += len(data)
        os.chmod(dp, 0o755)
        os.utime(dp, (FIXED_MTIME, FIXED_MTIME))
    os.chmod(out, 0o755)
    os.utime(out, (FIXED_MTIME, FIXED_MTIME))
    print(f"gen_tree: {out}: {n_dirs * per_dir} files in {n_dirs} folders, {written} bytes "
          f"in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
