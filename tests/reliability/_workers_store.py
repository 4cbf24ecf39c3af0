"""Store workers run in forked children of the fork server (``_zygote.py``): the churning writer
of the crash tests, one operation crashed at an I/O step, and the savers, gc loop and promoters
of the races; with ``run_op`` and ``make_base_store``, the operations and the base store the
fault tests walk through."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.reliability._limits import no_core


def _log(fd: int, *fields):
    os.write(fd, (" ".join(str(f) for f in fields) + "\n").encode())


def _apply_env(env):
    """Test switches the native module reads from the environment when it first needs them
    (WOODLOT_TEST_NO_LOCK when a store is opened, WOODLOT_FAULT_AT_STEP at the first I/O step),
    set in the forked child before it opens a store."""
    for k, v in (env or {}).items():
        os.environ[k] = str(v)


def worker_churn(root: str, model_path: str, log_path: str, seed: int, fault_at: int, n_iter: int = 10_000,
                 tolerant: bool = False, env: dict = None):
    """Loops save + promote + rollback (+ alias, + delete now and then) on one store, logging
    each operation only after it returned. With ``fault_at``, aborts at that I/O step (counted
    on this thread from just before the loop). With ``tolerant`` (several churners on one
    store), the conditions other writers cause (conflicts, a version deleted or made active
    meanwhile) are expected and skipped. ``env``: see ``_apply_env`` (for example
    ``{"WOODLOT_FAULT_AT_STEP": n}`` aborts at the n-th I/O step of the process, store opening
    included; ``{"WOODLOT_TEST_NO_LOCK": 1}`` writes without the advisory lock)."""
    import random

    _apply_env(env)
    import woodlot
    from woodlot import _native

    no_core()
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

    no_core()
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


def worker_saver(root: str, model_path: str, go_path: str, n: int, out_path: str, env: dict = None):
    _apply_env(env)
    import woodlot

    store = woodlot.VersionStore(root)
    data = Path(model_path).read_bytes()
    while not os.path.exists(go_path):
        time.sleep(0.0005)
    got = [store.save(data).version for _ in range(n)]
    Path(out_path).write_text(json.dumps(got))
    return 0


def worker_gc_loop(root: str, go_path: str, stop_path: str, out_path: str, env: dict = None):
    _apply_env(env)
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


def worker_promoter(root: str, go_path: str, target: int, expect: int, out_path: str, env: dict = None):
    _apply_env(env)
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



def worker_save_once(root: str, model_path: str, out_path: str, env: dict = None):
    """One save; writes its version number (used to show that a writer really skips the lock)."""
    _apply_env(env)
    import woodlot

    v = woodlot.VersionStore(root).save(Path(model_path).read_bytes())
    Path(out_path).write_text(str(v.version))
    return 0
