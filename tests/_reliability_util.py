"""Shared machinery of the reliability suite (tests/test_reliability_*.py).

- Small real model files, and hostile ones built byte by byte from the header layout of
  ``src/format/header.rs`` (resealed with the ``blake3`` package so the checksum passes and the
  deeper checks are reached).
- A fork server: importing woodlot (numpy, scikit-learn) costs ~2 s, so one helper process
  imports it once and forks a fresh child per trial. Children are real processes running the
  real extension; the tests kill them with SIGKILL, let them abort through the fault switch, or
  watch them die (a segfault or abort in a fuzz case).
- ``check_store``: what every store must satisfy after any crash or fault.

Budgets (seconds, trial counts) can be raised with environment variables for longer local runs;
the defaults keep the whole suite to a few minutes on two cores.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REGRESSIONS = HERE / "regressions"

MAGIC = b"\x89WDL\r\n\x1a\n"
HEADER_LEN = 64


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


# ---------------------------------------------------------------------------------------------
# model files
# ---------------------------------------------------------------------------------------------


def small_model(seed: int = 0, n_estimators: int = 3, max_depth: int = 3):
    """A small fitted woodlot forest on the wine data."""
    from sklearn.datasets import load_wine

    import woodlot

    X, y = load_wine(return_X_y=True)
    return woodlot.RandomForestClassifier(
        n_estimators=n_estimators, max_depth=max_depth, random_state=seed
    ).fit(X, y)


def split_file(data: bytes):
    """(header fields, meta bytes, payload bytes) of a model file, per src/format/header.rs."""
    major, minor, flags, meta_len, payload_len = struct.unpack_from("<HHIQQ", data, 8)
    meta = data[HEADER_LEN : HEADER_LEN + meta_len]
    payload = data[HEADER_LEN + meta_len : HEADER_LEN + meta_len + payload_len]
    return (major, minor, flags, meta_len, payload_len), meta, payload


def seal(data: bytes) -> bytes:
    """Writes the file checksum: BLAKE3 of the whole file with bytes 32..64 zeroed."""
    import blake3

    b = bytearray(data)
    if len(b) < HEADER_LEN:
        return bytes(b)
    b[32:64] = bytes(32)
    b[32:64] = blake3.blake3(bytes(b)).digest()
    return bytes(b)


def assemble(meta: bytes, payload: bytes, major=1, minor=0, flags=0, meta_len=None, payload_len=None) -> bytes:
    """A sealed model file from sections (lengths may be overridden to lie)."""
    head = MAGIC + struct.pack(
        "<HHIQQ",
        major,
        minor,
        flags,
        len(meta) if meta_len is None else meta_len,
        len(payload) if payload_len is None else payload_len,
    )
    return seal(head + bytes(32) + meta + payload)


# ---------------------------------------------------------------------------------------------
# store checks
# ---------------------------------------------------------------------------------------------

STORE_FILE = re.compile(
    r"^(FORMAT|ACTIVE|LOCK|blobs/[0-9a-f]{64}|versions/\d{10}\.(json|deleted)|events/\d{12}\.json|tmp/[^/]+)$"
)


def store_files(root) -> list:
    root = Path(root)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            out.append(str((Path(dirpath) / name).relative_to(root)))
        for name in dirnames:
            rel = str((Path(dirpath) / name).relative_to(root))
            if rel not in ("blobs", "versions", "events", "tmp"):
                out.append(rel + "/")
    return sorted(out)


def tree_snapshot(top) -> dict:
    """Every path under ``top`` with its size (directories as -1)."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for d in dirnames:
            snap[os.path.relpath(os.path.join(dirpath, d), top)] = -1
        for f in filenames:
            p = os.path.join(dirpath, f)
            snap[os.path.relpath(p, top)] = os.lstat(p).st_size
    return snap


def check_store(root, expect_lock_free: bool = True) -> dict:
    """Everything a store must satisfy after any crash or injected fault; returns facts.

    It opens; verify() reports no problem; the active version (if any) loads with full
    verification; the history is gapless; the only files are the store's own (temp files and
    unreferenced blobs are allowed debris); gc with no grace period removes the debris and
    leaves verify() clean; and a writer can take the lock (a dead holder did not keep it).
    """
    import woodlot

    root = Path(root)
    store = woodlot.VersionStore(root)
    report = store.verify()
    assert report.ok, f"verify found problems: {report.problems}"
    active = store.active
    if active is not None:
        store.load("active", verify=True)
    history = store.history()
    assert [e.seq for e in history] == list(range(1, len(history) + 1)), "history has a gap"
    files = store_files(root)
    strange = [f for f in files if not STORE_FILE.match(f)]
    assert not strange, f"unexpected files in the store: {strange}"
    versions = [v.version for v in store.versions()]
    for v in versions:
        store.load(v, verify=True)
    debris = [f for f in files if f.startswith("tmp/")]
    if expect_lock_free:
        gc = store.gc(grace_seconds=0)
        if gc.get("repaired"):
            # A repair (a delete's missing tombstone) frees blobs only on the next pass.
            gc = store.gc(grace_seconds=0)
        assert os.listdir(root / "tmp") == [], "gc left temp files"
        report = store.verify()
        assert report.ok, f"verify after gc: {report.problems}"
        blobs_after = {f for f in store_files(root) if f.startswith("blobs/")}
        referenced = set()
        for v in store.versions():
            m = json.loads((root / "versions" / f"{v.version:010d}.json").read_text())
            referenced.add("blobs/" + m["blob"]["digest"])
            referenced.add("blobs/" + m["probes"]["digest"])
        assert blobs_after == referenced, "gc left unreferenced blobs or removed used ones"
    else:
        gc = None
    return {
        "history": [(e.kind, e.raw.get("version")) for e in history],
        "versions": versions,
        "active": None if active is None else active.version,
        "debris": debris,
        "gc": gc,
        "notes": report.notes,
    }


# ---------------------------------------------------------------------------------------------
# the fork server
# ---------------------------------------------------------------------------------------------

ZYGOTE_SRC = r"""
import json, os, sys, traceback
sys.path.insert(0, sys.argv[1])
import woodlot  # the expensive import, done once
import _reliability_util as u
inp, out = sys.stdin, sys.stdout
for line in inp:
    cmd = json.loads(line)
    if cmd["op"] == "fork":
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.setpgid(0, 0)
                devnull = os.open(os.devnull, os.O_RDWR)
                os.dup2(devnull, 0)
                if cmd.get("quiet", True):
                    os.dup2(devnull, 1)
                code = getattr(u, cmd["fn"])(*cmd["args"]) or 0
            except BaseException:
                traceback.print_exc()
                code = 99
            finally:
                sys.stdout.flush(); sys.stderr.flush()
                os._exit(code)
        out.write(json.dumps({"pid": pid}) + "\n"); out.flush()
    elif cmd["op"] == "wait":
        _, status = os.waitpid(cmd["pid"], 0)
        if os.WIFSIGNALED(status):
            res = {"signal": os.WTERMSIG(status)}
        else:
            res = {"code": os.WEXITSTATUS(status)}
        out.write(json.dumps(res) + "\n"); out.flush()
    elif cmd["op"] == "exit":
        break
"""


class Zygote:
    """A process that has imported woodlot and forks a fresh child per request."""

    def __init__(self):
        env = dict(os.environ)
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE_SRC, str(HERE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def _ask(self, cmd: dict) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fork server died")
        return json.loads(line)

    def start(self, fn: str, *args, quiet: bool = True) -> int:
        """Forks a child running ``_reliability_util.<fn>(*args)``; returns its pid."""
        return self._ask({"op": "fork", "fn": fn, "args": list(args), "quiet": quiet})["pid"]

    def wait(self, pid: int) -> dict:
        """``{"code": n}`` or ``{"signal": n}``."""
        return self._ask({"op": "wait", "pid": pid})

    def run(self, fn: str, *args, timeout: float = 300.0) -> dict:
        pid = self.start(fn, *args)
        deadline = time.monotonic() + timeout
        # waitpid in the server blocks; enforce the timeout from here with a kill.
        import threading

        timer = threading.Timer(max(0.0, deadline - time.monotonic()), lambda: _kill(pid))
        timer.start()
        try:
            return self.wait(pid)
        finally:
            timer.cancel()

    def kill9(self, pid: int) -> dict:
        _kill(pid)
        return self.wait(pid)

    def close(self):
        try:
            self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def _kill(pid: int):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _no_core():
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


# ---------------------------------------------------------------------------------------------
# child workers (run in forked children of the fork server)
# ---------------------------------------------------------------------------------------------


def _log(fd: int, *fields):
    os.write(fd, (" ".join(str(f) for f in fields) + "\n").encode())


def worker_churn(root: str, model_path: str, log_path: str, seed: int, fault_at: int, n_iter: int = 10_000,
                 tolerant: bool = False):
    """Loops save + promote + rollback (+ alias, + delete now and then) on one store, logging
    each operation only after it returned. With ``fault_at``, aborts at that I/O step. With
    ``tolerant`` (several churners on one store), the conditions other writers cause
    (conflicts, a version deleted or made active meanwhile) are expected and skipped."""
    import random

    import woodlot
    from woodlot import _native

    _no_core()
    rng = random.Random(seed)
    data = Path(model_path).read_bytes()
    others = [p.read_bytes() for p in sorted(Path(model_path).parent.glob("alt*.wdl"))]
    store = woodlot.VersionStore(root)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    if fault_at:
        _native._store_fault_arm(fault_at, True)
    _log(fd, "ready")
    expected = (woodlot.ConflictError, woodlot.StoreError, woodlot.VersionNotFoundError) if tolerant else ()

    def step(fn):
        try:
            fn()
        except expected:
            pass

    for i in range(n_iter):
        blob = data if not others or rng.random() < 0.5 else rng.choice(others)
        v = store.save(blob, tags={"i": str(i)})
        _log(fd, "save", v.version)

        def promote():
            store.promote(v, reason=f"iteration {i}")
            _log(fd, "promote", v.version)

        step(promote)
        if i % 2:
            def rollback():
                back = store.rollback(reason="churn")
                _log(fd, "rollback", back.version)

            step(rollback)
        if rng.random() < 0.2:
            def alias():
                store.set_alias("champion", "active")
                _log(fd, "alias_set", store.active.version)

            step(alias)
        if rng.random() < 0.1 and len(store.versions()) > 3:
            def delete():
                victim = store.versions()[0].version
                aliased = store.aliases.get("champion") == f"v{victim}"
                if victim != store.active.version and not aliased:
                    store.delete(victim, reason="churn")
                    _log(fd, "delete", victim)

            step(delete)
    return 0


def worker_lock_holder(root: str, ready_path: str):
    """Takes the store's writer lock (flock, as std's File::lock does) and sleeps."""
    import fcntl

    f = open(os.path.join(root, "LOCK"), "a+")
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    Path(ready_path).write_text("locked")
    time.sleep(600)


def worker_crash_op(root: str, model_path: str, op: str, at: int):
    """Runs one store operation with a crash (abort) armed at I/O step ``at``."""
    import woodlot
    from woodlot import _native

    _no_core()
    store = woodlot.VersionStore(root)
    data = Path(model_path).read_bytes()
    _native._store_fault_arm(at, True)
    run_op(store, op, data)
    _native._store_fault_arm(0)
    return 0


def run_op(store, op: str, data: bytes):
    """The operations whose I/O steps the fault tests walk through, on the base store of
    ``make_base_store`` (v1 active, v2 saved, alias "champion" -> v1)."""
    if op in ("save", "save_new"):  # save_new: a model whose blobs are not stored yet
        return store.save(data, tags={"fault": "1"})
    if op == "promote":
        return store.promote(2, reason="fault", expect_active=1)
    if op == "rollback":
        return store.rollback(to=2, reason="fault")
    if op == "set_alias":
        return store.set_alias("champion", 2)
    if op == "delete":
        return store.delete(2, reason="fault")
    if op == "gc":
        return store.gc(grace_seconds=0)
    raise ValueError(op)


def make_base_store(root, data: bytes, other: bytes):
    import woodlot

    s = woodlot.VersionStore(root)
    s.save(data)
    s.save(other)
    s.promote(1)
    s.set_alias("champion", 1)
    return s


def worker_saver(root: str, model_path: str, go_path: str, n: int, out_path: str):
    import woodlot

    store = woodlot.VersionStore(root)
    data = Path(model_path).read_bytes()
    while not os.path.exists(go_path):
        time.sleep(0.0005)
    got = [store.save(data).version for _ in range(n)]
    Path(out_path).write_text(json.dumps(got))
    return 0


def worker_gc_loop(root: str, go_path: str, stop_path: str, out_path: str):
    import woodlot

    store = woodlot.VersionStore(root)
    while not os.path.exists(go_path):
        time.sleep(0.0005)
    runs = 0
    while not os.path.exists(stop_path):
        store.gc(grace_seconds=0)
        runs += 1
    Path(out_path).write_text(json.dumps(runs))
    return 0


def worker_promoter(root: str, go_path: str, target: int, expect: int, out_path: str):
    import woodlot

    store = woodlot.VersionStore(root)
    while not os.path.exists(go_path):
        time.sleep(0.0005)
    try:
        store.promote(target, expect_active=expect, reason=f"race for v{target}")
        res = "won"
    except woodlot.ConflictError:
        res = "conflict"
    Path(out_path).write_text(res)
    return 0


# ---------------------------------------------------------------------------------------------
# disk full and read-only (test_reliability_disk.py)
# ---------------------------------------------------------------------------------------------


def _attempt(fn) -> dict:
    try:
        fn()
        return {"ok": True}
    except OSError as e:
        return {"ok": False, "type": type(e).__name__, "errno": e.errno, "msg": str(e)}
    except Exception as e:  # anything else is a finding
        return {"ok": False, "type": type(e).__name__, "errno": None, "msg": str(e)}


def _reads_work(store) -> dict:
    try:
        store.versions()
        store.history()
        store.load("active", verify=True)
        ok = store.verify().ok
        return {"reads": "ok" if ok else "verify failed"}
    except Exception as e:
        return {"reads": f"{type(e).__name__}: {e}"}


def _fresh_models(model_dir: str) -> list:
    return [p.read_bytes() for p in sorted(Path(model_dir).glob("fresh*.wdl"))]


def worker_fsize(root: str, model_dir: str, limits: list, out_path: str):
    """Saves a fresh model under each RLIMIT_FSIZE in ``limits`` (SIGXFSZ ignored, so write(2)
    fails with EFBIG); records the outcome and whether reads still work."""
    import resource

    import woodlot

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    store = woodlot.VersionStore(root)
    fresh = _fresh_models(model_dir)
    results = []
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    for i, limit in enumerate(limits):
        before = len(store.versions())
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        res = _attempt(lambda: store.save(fresh[i % len(fresh)]))
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        res.update(limit=limit, before=before, after=len(store.versions()))
        res["tmp"] = os.listdir(os.path.join(root, "tmp"))
        res.update(_reads_work(store))
        results.append(res)
    Path(out_path).write_text(json.dumps(results))
    return 0


def tmpfs_main(mnt: str, model_dir: str, out_path: str):
    """Runs inside ``unshare -m`` with a small tmpfs mounted at ``mnt``: fills the disk to
    leave 0, 1, 2, ... pages free and saves; then remounts it read-only and tries every write."""
    import errno

    import woodlot

    root = os.path.join(mnt, "store")
    fresh = _fresh_models(model_dir)
    store = woodlot.VersionStore(root)
    store.save(fresh[0])
    store.save(fresh[1])
    store.promote(1)
    out = {"full": [], "readonly": []}
    filler = os.path.join(mnt, "filler")
    for pages in range(0, 14):
        with open(filler, "wb") as f:
            chunk = b"\0" * 65536
            try:
                while True:
                    f.write(chunk)
                    f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
        size = os.path.getsize(filler)
        os.truncate(filler, max(0, size - pages * 4096))
        before = [v.version for v in store.versions()]
        res = _attempt(lambda: store.save(fresh[2 + pages % (len(fresh) - 2)], tags={"pages": str(pages)}))
        res.update(pages=pages, before=before, after=[v.version for v in store.versions()])
        res["tmp"] = os.listdir(os.path.join(root, "tmp"))
        res.update(_reads_work(store))
        os.unlink(filler)
        res["verify_after_freeing"] = store.verify().ok
        out["full"].append(res)
    # A save after space came back works.
    out["after_full"] = _attempt(lambda: store.save(fresh[-1]))
    snapshot = {p: Path(root, p).read_bytes() for p in store_files(root) if not p.startswith("tmp/") and p != "LOCK"}
    subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
    ro = woodlot.VersionStore(root)  # opening a read-only store works
    ops = {
        "save": lambda: ro.save(fresh[0]),
        "promote": lambda: ro.promote(2),
        "rollback": lambda: ro.rollback(to=2),
        "set_alias": lambda: ro.set_alias("x", 1),
        "delete": lambda: ro.delete(2),
        "gc": lambda: ro.gc(grace_seconds=0),
    }
    for name, fn in ops.items():
        res = _attempt(fn)
        res["op"] = name
        res.update(_reads_work(ro))
        out["readonly"].append(res)
    out["unchanged"] = snapshot == {
        p: Path(root, p).read_bytes() for p in store_files(root) if not p.startswith("tmp/") and p != "LOCK"
    }
    out["ro_tmp"] = os.listdir(os.path.join(root, "tmp"))
    Path(out_path).write_text(json.dumps(out))
    return 0


# ---------------------------------------------------------------------------------------------
# damaged and hostile files (test_reliability_damaged.py, test_reliability_fuzz.py)
# ---------------------------------------------------------------------------------------------

AS_MARGIN = 1 << 30  # address space a child may add while loading hostile files


def _cap_address_space(margin: int = AS_MARGIN):
    """Caps the address space at what the process has mapped plus ``margin``, so that a huge
    allocation fails (and aborts) instead of silently reserving virtual memory."""
    import resource

    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + margin, resource.RLIM_INFINITY))


def _maxrss_kb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _outcome(fn) -> list:
    import woodlot

    try:
        fn()
        return ["ok", ""]
    except woodlot.CorruptModelError as e:
        return ["CorruptModelError", str(e)]
    except Exception as e:
        return [type(e).__name__, str(e)]


def worker_load_cases(case_dir: str, store_root: str, out_path: str):
    """Loads every file in ``case_dir`` through woodlot.loads and woodlot.load, and every
    version of the store at ``store_root`` through store.load (plain and verify=True), under an
    address-space cap; records each outcome and the peak RSS before and after."""
    import numpy as np

    import woodlot

    _no_core()
    x = np.zeros((2, 13))
    rss0 = _maxrss_kb()
    _cap_address_space()
    results = {}
    for p in sorted(Path(case_dir).iterdir()):
        data = p.read_bytes()

        def use():
            m = woodlot.loads(data)
            m.predict_proba(x[:, : m.n_features_in_])

        results[p.name] = _outcome(use)
        if sum(p.name.encode()) % 4 == 0:
            results[p.name + "@load(path)"] = _outcome(lambda: woodlot.load(p))
    if store_root:
        store = woodlot.VersionStore(store_root)
        for v in sorted(int(f[9:19]) for f in store_files(store_root) if f.startswith("versions/")):
            results[f"store v{v}"] = _outcome(lambda: store.load(v))
            results[f"store v{v} verify"] = _outcome(lambda: store.load(v, verify=True))
    Path(out_path).write_text(json.dumps({"results": results, "rss0_kb": rss0, "rss1_kb": _maxrss_kb()}))
    return 0


# ---------------------------------------------------------------------------------------------
# the mutation fuzzer (test_reliability_fuzz.py)
# ---------------------------------------------------------------------------------------------

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 1 << 31, (1 << 32) - 1, 1 << 32, 1 << 50, 1 << 62, (1 << 63), (1 << 64) - 1]


def mutate_bytes(rng, data: bytes, seeds: list) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 4, 8))):
        op = rng.randrange(11)
        n = len(b)
        at = rng.randrange(n) if n else 0
        if op == 0 and n:
            b[at] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            b[at] = rng.choice((0, 1, 0x7F, 0x80, 0xFF))
        elif op == 2:
            width = rng.choice((2, 4, 8))
            v = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
            b[at : at + width] = v.to_bytes(width, "little")
        elif op == 3:
            from _reliability_wire import varint

            enc = varint(rng.choice(INTERESTING) & ((1 << 64) - 1))
            b[at : at + len(enc)] = enc
        elif op == 4:
            b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elif op == 5 and n:
            del b[at : at + rng.randrange(1, 33)]
        elif op == 6 and n:
            end = min(n, at + rng.randrange(1, 33))
            b[at:at] = b[at:end]
        elif op == 7:
            del b[rng.randrange(n + 1) :]
        elif op == 8 and seeds:
            other = rng.choice(seeds)
            if other:
                s = rng.randrange(len(other))
                chunk = other[s : s + rng.randrange(1, 64)]
                b[at : at + len(chunk)] = chunk
        elif op == 9:
            b[at : at + 4] = struct.pack("<I", rng.choice((0x7FC00000, 0x7F800000, 0xFF800000, 0x00000001, 0x80000000)))
        elif op == 10:
            b[at : at + 8] = struct.pack("<d", rng.choice((float("nan"), float("inf"), -0.0, 1e308, 5e-324)))
    return bytes(b)


def mutate_model(rng, data: bytes, seeds: list) -> bytes:
    """A mutated model file: byte-level (resealed most of the time, so the checksum does not
    stop everything) or structure-aware through the format-2 wire writer."""
    from _reliability_wire import f32bits, locate

    if rng.random() < 0.3:
        wf = locate(data)
        if wf is not None:
            t = rng.choice(wf.trees)
            k = rng.randrange(8)
            if k == 0:
                i = rng.randrange(len(t.is_leaf))
                t.is_leaf[i] ^= 1
            elif k == 1 and t.features:
                t.features[rng.randrange(len(t.features))] = rng.randrange(1 << max(wf.width, 1))
            elif k == 2 and t.thresholds:
                t.thresholds[rng.randrange(len(t.thresholds))] = rng.choice(
                    (0x7FC00000, 0x7F800000, 0xFF800000, f32bits(rng.uniform(-1e6, 1e6))))
            elif k == 3 and t.leaf_values:
                t.leaf_values[rng.randrange(len(t.leaf_values))] = rng.choice(
                    (0x7FC00000, f32bits(-1.0), f32bits(2.0), f32bits(0.0), f32bits(1.0)))
            elif k == 4:
                t.n_nodes = rng.choice((0, 1, len(t.is_leaf) - 1, len(t.is_leaf) + 1, 1 << 32, 1 << 40))
            elif k == 5:
                wf.tree_count = rng.choice((0, len(wf.trees) - 1, len(wf.trees) + 1, 1 << 50))
            elif k == 6 and t.n_samples:
                t.n_samples[rng.randrange(len(t.n_samples))] = rng.choice((0, (1 << 32) - 1, 1 << 32))
            else:
                del t.is_leaf[rng.randrange(len(t.is_leaf)) :]
            return wf.encode()
    out = mutate_bytes(rng, data, seeds)
    return seal(out) if rng.random() < 0.8 else out


def _json_mutation(rng, data: bytes) -> bytes:
    """Replaces one JSON scalar or drops one key of a store record."""
    try:
        doc = json.loads(data)
    except ValueError:
        return data
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append(path + [k])
                walk(v, path + [k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append(path + [i])
                walk(v, path + [i])

    walk(doc, [])
    if not paths:
        return data
    path = rng.choice(paths)
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    if isinstance(parent, dict) and rng.random() < 0.2:
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice([
            None, True, -1, 0, 1, 2, 3, 10**30, 2**64, 2**63 - 1, -(2**63), 1.5, "x", "", "../../../escape",
            "0" * 64, "a" * 64, [], {}, {"active": 1}, "v1", "\u202e", 1e308,
        ])
    return json.dumps(doc).encode()


STORE_TARGETS = ["ACTIVE", "FORMAT", "versions/0000000001.json", "versions/0000000002.json",
                 "versions/0000000003.json", "versions/0000000003.deleted"] + [
    f"events/{i:012d}.json" for i in range(1, 9)]


def build_fuzz_base_store(root, models: list):
    import woodlot

    s = woodlot.VersionStore(root)
    s.save(models[0], tags={"t": "1"}, metrics={"acc": 0.9})
    s.save(models[1 % len(models)])
    s.promote(1, reason="first")
    s.promote(2)
    s.set_alias("champion", 1)
    s.save(models[2 % len(models)])
    s.delete(3, reason="bad")
    s.rollback()
    return s


def run_store_case(work: Path, model: bytes) -> None:
    """Every read and write a user would try on a store with one damaged record."""
    import woodlot

    try:
        s = woodlot.VersionStore(work)
    except woodlot.WoodlotError:
        return
    ops = [
        lambda: s.versions(), lambda: s.history(), lambda: s.active, lambda: s.aliases,
        lambda: s.verify(), lambda: s.load("active", verify=True), lambda: s.get(1), lambda: s.load(2),
        lambda: s.get("champion"), lambda: s.save(model), lambda: s.promote(1), lambda: s.rollback(),
        lambda: s.set_alias("x", "latest"), lambda: s.gc(dry_run=True), lambda: s.gc(grace_seconds=0),
        lambda: len(s), lambda: repr(s),
    ]
    for op in ops:
        try:
            op()
        except woodlot.WoodlotError:
            pass


def keep_crasher(crash_dir, case: bytes, err: str) -> str:
    """Keeps a crashing case as ``<crash_dir>/<kind>-<sha1>.case`` (first line: ``model`` or
    ``store <file>``; then the bytes), with the error beside it."""
    import hashlib

    kind = case.split(b"\n", 1)[0].split()[0].decode()
    p = Path(crash_dir) / f"{kind}-{hashlib.sha1(case).hexdigest()[:16]}.case"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(case)
    p.with_suffix(".txt").write_text(err)
    return str(p)


_SEEDS = None


def fuzz_seed_models() -> list:
    """Valid model files of varied shapes, made by the installed build (so they follow its
    format): many and few features, two and three classes, oob estimates, deep trees."""
    global _SEEDS
    if _SEEDS is None:
        import numpy as np
        from sklearn.datasets import load_iris, load_wine

        import woodlot

        X, y = load_wine(return_X_y=True)
        Xi, yi = load_iris(return_X_y=True)
        rng = np.random.default_rng(0)
        X1 = rng.normal(size=(60, 1))
        y1 = (X1[:, 0] > 0).astype(int)
        RF = woodlot.RandomForestClassifier
        _SEEDS = [
            woodlot.dumps(RF(n_estimators=3, max_depth=3, random_state=0).fit(X, y)),
            woodlot.dumps(RF(n_estimators=2, oob_score=True, random_state=1).fit(Xi, yi)),
            woodlot.dumps(RF(n_estimators=2, max_depth=2, random_state=2).fit(X1, y1)),
            woodlot.dumps(RF(n_estimators=1, random_state=3).fit(Xi, np.array(["a", "b", "c"])[yi])),
            woodlot.dumps(RF(n_estimators=2, max_depth=None, min_samples_leaf=1, random_state=4).fit(X[:40], y[:40])),
        ]
    return _SEEDS


def worker_fuzz(kind: str, seed: int, seconds: float, state_path: str, crash_dir: str, out_path: str):
    import random
    import tempfile
    import traceback

    import numpy as np

    import woodlot

    _no_core()
    rng = random.Random(seed)
    seeds = fuzz_seed_models()
    xs = np.random.default_rng(seed).normal(size=(4, 40))
    xs[0, ::3] = np.nan
    state = os.open(state_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    crashers, cases, loaded = [], 0, 0
    deadline = time.monotonic() + seconds
    sandbox = Path(tempfile.mkdtemp(prefix="woodlot-fuzz-"))
    base = sandbox / "base"
    if kind == "store":
        build_fuzz_base_store(base, seeds)
    _cap_address_space(2 << 30)

    def keep(data: bytes, name: str, err: str):
        header = b"model" if name == "model" else b"store " + name[len("store-"):].encode()
        crashers.append(keep_crasher(crash_dir, header + b"\n" + data, err))

    while time.monotonic() < deadline:
        cases += 1
        if kind == "model":
            data = mutate_model(rng, rng.choice(seeds), seeds)
            os.ftruncate(state, 0)
            os.pwrite(state, b"model\n" + data, 0)
            try:
                m = woodlot.loads(data)
                m.predict_proba(xs[:, : m.n_features_in_])
                woodlot.loads(woodlot.dumps(m))
                loaded += 1
            except woodlot.CorruptModelError as e:
                if not str(e):
                    keep(data, "model", "CorruptModelError without a reason")
            except BaseException as e:  # noqa: BLE001 - anything else is a crasher
                keep(data, "model", traceback.format_exc())
        else:
            target = rng.choice(STORE_TARGETS)
            work = sandbox / "work"
            if work.exists():
                shutil.rmtree(work)
            shutil.copytree(base, work)
            p = work / target
            original = p.read_bytes() if p.exists() else b""
            r = rng.random()
            if r < 0.45:
                data = _json_mutation(rng, original)
            elif r < 0.9:
                data = mutate_bytes(rng, original, [original])
            else:
                data = rng.choice([b"", b"\0" * 100, b"{}", b"[]", b"null", b"99999999999999999999999", b"-1", b"\xff" * 10])
            tag = target.replace("/", "__")
            os.ftruncate(state, 0)
            os.pwrite(state, f"store {tag}\n".encode() + data, 0)
            p.write_bytes(data)
            try:
                run_store_case(work, seeds[0])
            except BaseException:  # noqa: BLE001
                keep(data, f"store-{tag}", traceback.format_exc())
            stray = sorted(x.name for x in sandbox.iterdir() if x.name not in ("base", "work"))
            if stray:
                keep(data, f"store-{tag}", f"files appeared outside the store: {stray}")
                for x in stray:
                    shutil.rmtree(sandbox / x, ignore_errors=True)
    shutil.rmtree(sandbox, ignore_errors=True)
    Path(out_path).write_text(json.dumps({"cases": cases, "loaded": loaded, "crashers": crashers}))
    return 0


def replay_case(path: str) -> str:
    """Replays one kept crasher; returns "" if it now behaves (a documented error or success)."""
    import tempfile
    import traceback

    import woodlot

    raw = Path(path).read_bytes()
    header, _, data = raw.partition(b"\n")
    kind = header.split()
    try:
        if kind[0] == b"model":
            try:
                m = woodlot.loads(data)
                import numpy as np

                m.predict_proba(np.zeros((2, m.n_features_in_)))
            except woodlot.CorruptModelError as e:
                assert str(e)
        else:
            target = kind[1].decode().replace("__", "/")
            seeds = fuzz_seed_models()
            with tempfile.TemporaryDirectory() as d:
                base = Path(d) / "store"
                build_fuzz_base_store(base, seeds)
                (base / target).write_bytes(data)
                run_store_case(base, seeds[0])
                stray = [x for x in Path(d).iterdir() if x.name != "store"]
                assert not stray, stray
        return ""
    except BaseException:  # noqa: BLE001
        return traceback.format_exc()


def worker_replay(paths: list, out_path: str):
    _no_core()
    _cap_address_space(2 << 30)
    results = {p: replay_case(p) for p in paths}
    Path(out_path).write_text(json.dumps(results))
    return 0
