"""What every store must satisfy after any crash or injected fault (``check_store``), and the
listings the checks and the hostile-name test compare (``store_files``, ``tree_snapshot``)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

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

