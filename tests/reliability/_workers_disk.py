"""Disk-full and read-only workers (test_reliability_disk.py): saves under RLIMIT_FSIZE in a
forked child, and the whole tmpfs scenario run inside a private mount namespace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from tests.reliability._checks import store_files


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
        # Unbuffered: a buffered file keeps what a full disk refused and raises again from
        # close(), depending on where the last chunk happened to end.
        with open(filler, "wb", buffering=0) as f:
            chunk = b"\0" * 65536
            try:
                while True:
                    f.write(chunk)
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
    # Garbage for gc to want to remove once the store is read-only: a blob nothing references.
    import blake3

    garbage = b"a blob no version references"
    Path(root, "blobs", blake3.blake3(garbage).hexdigest()).write_bytes(garbage)
    out["garbage"] = "blobs/" + blake3.blake3(garbage).hexdigest()
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
    # A dry run only reads: it works on a read-only store, and lists the deleted version's blobs.
    try:
        out["ro_dry_run"] = sorted(item["path"] for item in ro.gc(dry_run=True, grace_seconds=0)["removed"])
    except Exception as e:  # a finding, reported by the test
        out["ro_dry_run"] = f"{type(e).__name__}: {e}"
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

