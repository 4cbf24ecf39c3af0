"""A failure injected at every I/O step of save (of a model whose blobs are stored and of a new
one), promote, rollback, set_alias, delete and gc, one step at a time (the SQLite method,
through the test-only switch in src/store/backend/faults.rs): after each, the store holds
wholly the old state or wholly the new one, verify() is clean, gc removes whatever debris is
left, and the same operation then succeeds. The steps are the backend's reads as well as its
writes (``read_open``, ``read_data``, ``read_exists``, ... and ``create_temp``, ``write_temp``,
``fsync_temp``, ``link``, ``rename``, ``fsync_dir``, ``remove``, ``lock_*``), so a failed read
is injected at every point too. Every one of the 7 operations is also crashed (abort, SIGABRT
required) at every step, in a forked child.

Counts: 7 operations; each is run once to count its steps, then once per step with an error
and once per step with a crash. With the base store here (and the backend of this commit) the
steps are: save 40 (19 of them reads), save_new 46 (15), promote 46 (33), rollback 35 (22),
set_alias 21 (8), delete 27 (8), gc 28 (20): 243 error trials and 243 crash trials. The counts
move with the code; each test prints its operation's count (``-s``).
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

import woodlot
from woodlot import _native
from tests.reliability._checks import check_store, store_files
from tests.reliability._models import small_model
from tests.reliability._workers_store import make_base_store, run_op, worker_crash_op

OPS = ["save", "save_new", "promote", "rollback", "set_alias", "delete", "gc"]
COMMITTED_WITHOUT_EVENT = "was saved (its manifest is durable) but its history event was not"
COMMITTED_UNCHECKED = "was saved (its manifest is durable) but its blobs were not re-checked"
COMMITTED_UNSYNCED = "was saved (its manifest is durable) but it may not be durable yet"
COUNTS = {}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("fault-models")
    model = woodlot.dumps(small_model(0))
    other = woodlot.dumps(small_model(1, n_estimators=4))
    third = woodlot.dumps(small_model(2, max_depth=2))
    (d / "model.wdl").write_bytes(model)
    (d / "fresh.wdl").write_bytes(woodlot.dumps(small_model(3, n_estimators=5)))
    base = d / "base"
    s = make_base_store(base, model, other)
    s.save(third)
    s.delete(3)  # its blobs are garbage for gc
    (base / "tmp" / "123-1-1.tmp").write_bytes(b"debris of an interrupted write")
    os.utime(base / "tmp" / "123-1-1.tmp", (1, 1))
    return d, model


def _records(root: Path) -> dict:
    """The store's committed records (not debris): manifests, tombstones, events."""
    out = {}
    for f in store_files(root):
        if f.startswith(("versions/", "events/")):
            out[f] = (root / f).read_bytes()
    return out


def _summary(root: Path):
    """What 'the same state' means across two runs of one operation (times and pids differ)."""
    recs = _records(root)
    names = sorted(recs)
    events = [json.loads(recs[n]) for n in names if n.startswith("events/")]
    last = events[-1] if events else {}
    return names, [(e["kind"], e["version"]) for e in events], last.get("state")


def _committed_without_event(op, old, new, now) -> bool:
    """A save whose manifest was linked but whose save event was not written."""
    added = set(now[0]) - set(old[0])
    return (
        op in ("save", "save_new")
        and set(old[0]) <= set(now[0])
        and len(added) == 1
        and next(iter(added)).startswith("versions/")
        and added <= set(new[0])
        and now[1:] == old[1:]
    )


def _deleted_without_tombstone(op, old, new, now) -> bool:
    """A delete whose event was written but whose tombstone was not (gc writes it)."""
    return op == "delete" and now[1:] == new[1:] and set(new[0]) - set(now[0]) == {
        n for n in new[0] if n.endswith(".deleted") and n not in old[0]
    }


def _model_for(d: Path, op: str) -> Path:
    return d / ("fresh.wdl" if op == "save_new" else "model.wdl")


def _expected_new(tmp_path: Path, base: Path, op: str, model: bytes):
    root = tmp_path / "expected"
    shutil.copytree(base, root)
    store = woodlot.VersionStore(root)  # opened first: the trials arm after opening, too
    _native._store_fault_arm(0)
    run_op(store, op, model)
    steps = _native._store_fault_steps()
    return _summary(root), steps


@pytest.mark.parametrize("op", OPS)
def test_an_error_at_every_io_step_leaves_old_or_new(tmp_path, data, op):
    d, _ = data
    model = _model_for(d, op).read_bytes()
    base = d / "base"
    new, steps = _expected_new(tmp_path, base, op, model)
    assert len(steps) >= 5, steps
    reads = [x for x in steps if x.startswith("read_")]
    assert reads and len(reads) < len(steps), f"{op}: read and write steps are both walked: {steps}"
    print(f"{op}: {len(steps)} steps ({len(reads)} reads)")
    old = _summary(base)
    old_records = _records(base)
    outcomes = {"old": 0, "new": 0, "committed-without-event": 0, "committed-unsynced": 0, "committed-unchecked": 0}
    for at in range(1, len(steps) + 1):
        root = tmp_path / f"at{at}"
        shutil.copytree(base, root)
        store = woodlot.VersionStore(root)
        _native._store_fault_arm(at)
        try:
            run_op(store, op, model)
            raised = None
        except OSError as e:
            raised = e
        finally:
            _native._store_fault_arm(0)
        where = f"{op}: fault at step {at} ({steps[at - 1]})"
        if raised is not None:
            assert "injected fault" in str(raised), f"{where}: unclear error {raised!r}"
        now = _summary(root)
        if op == "gc":
            # gc removes garbage one file at a time: any prefix of its work is a valid state,
            # and no committed record is ever touched.
            assert _records(root) == old_records, where
            check_store(root)
            outcomes["old" if raised else "new"] += 1
            continue
        if now == old and _records(root) == old_records:
            assert raised is not None, f"{where}: nothing happened and no error was raised"
            outcomes["old"] += 1
        elif now == new:
            outcomes["new"] += 1
        elif _committed_without_event(op, old, new, now):
            # The manifest (the commit point) is in place but the save event is not: the version
            # exists and verify() notes the missing history record. The error must say so.
            assert raised is not None, where
            (manifest,) = set(now[0]) - set(old[0])
            hit = re.search(r"injected fault at I/O step \d+ \((\w+)\)", str(raised))
            if hit and hit.group(1) == "fsync_dir" and f"syncing directory of {manifest}" in str(raised):
                # The fault hit the fsync of versions/ right after the manifest's link: the
                # version is visible but not known durable. The error names that manifest and
                # says that the version exists, so a retry does not save it twice.
                assert COMMITTED_UNSYNCED in str(raised), f"{where}: {raised!r}"
                outcomes["committed-unsynced"] += 1
            elif hit and hit.group(1).startswith("read_") and COMMITTED_UNCHECKED in str(raised):
                # The fault hit the save's post-commit re-check of its blobs (the guard against
                # a concurrent gc): the version exists, and the error says so.
                outcomes["committed-unchecked"] += 1
            else:
                assert COMMITTED_WITHOUT_EVENT in str(raised), f"{where}: {raised!r}"
                outcomes["committed-without-event"] += 1
        elif _deleted_without_tombstone(op, old, new, now):
            # The delete event is durable, its tombstone is not yet: gc writes it (checked below).
            assert raised is not None, where
            check_store(root)
            assert _summary(root) == new, f"{where}: gc did not complete the delete"
            outcomes["new"] += 1
        else:
            pytest.fail(f"{where}: neither the old nor the new state:\nold {old}\nnew {new}\nnow {now}")
        # The untouched records are byte-identical.
        for name, content in old_records.items():
            assert (root / name).read_bytes() == content, f"{where}: {name} changed"
        check_store(root)
        # And the store keeps working: the same operation succeeds (or was already done).
        if _summary(root) != new:
            run_op(woodlot.VersionStore(root), op, model)
            check_store(root)
    COUNTS[op] = len(steps)
    assert outcomes["old"] >= 1, outcomes
    assert op == "gc" or outcomes["new"] >= 1, outcomes



@pytest.mark.parametrize("op", OPS)
def test_a_crash_at_every_io_step_leaves_old_or_new(tmp_path, data, zygote, op):
    d, _ = data
    model = _model_for(d, op).read_bytes()
    base = d / "base"
    new, steps = _expected_new(tmp_path, base, op, model)
    old = _summary(base)
    for at in range(1, len(steps) + 1):
        root = tmp_path / f"at{at}"
        shutil.copytree(base, root)
        status = zygote.run(worker_crash_op, str(root), str(_model_for(d, op)), op, at, timeout=60)
        where = f"{op}: crash at step {at} ({steps[at - 1]})"
        assert status.get("signal") == 6, f"{where}: {status}"
        now = _summary(root)
        ok = now in (old, new) or _committed_without_event(op, old, new, now)
        tombstone_pending = _deleted_without_tombstone(op, old, new, now)
        assert ok or tombstone_pending, f"{where}:\nold {old}\nnew {new}\nnow {now}"
        check_store(root)
        if tombstone_pending:
            assert _summary(root) == new, f"{where}: gc did not complete the delete"
        # The next process carries on: the same operation succeeds (or was already done).
        if _summary(root) != new:
            run_op(woodlot.VersionStore(root), op, model)
            check_store(root)
    print(f"{op}: crashed at each of {len(steps)} steps")
