"""The fault switch's process-wide side and the test-only no-lock switch (issue 8), which the
crash and race trials build on:

- ``WOODLOT_FAULT_AT_STEP=N`` makes a process fail or abort at exactly its N-th store I/O step
  counted from process start, so a crash trial is reproducible from its seed by operation count
  (no wall-clock sleep); ``WOODLOT_FAULT_TRACE=1`` and ``_native._store_fault_process_log()``
  name the steps, read steps (``read_*``) included.
- ``WOODLOT_TEST_NO_LOCK=1`` makes the local backend skip its advisory lock, so process races
  test the create-only protocol itself."""

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import woodlot
from woodlot import RandomForestClassifier

SCRIPT = """
    import json, os, sys
    import woodlot
    from woodlot import _native
    data = open(sys.argv[2], "rb").read()
    try:
        s = woodlot.VersionStore(sys.argv[1])
        v = s.save(data, tags={"by": "child"})
        s.promote(v, reason="child")
        s.set_alias("champion", v)
        s.gc(grace_seconds=0)
        result = "ok"
    except OSError as e:
        result = str(e)
    print(json.dumps({"result": result, "steps": _native._store_fault_process_steps(),
                      "log": _native._store_fault_process_log()}))
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, iris):
    X, y = iris
    m = RandomForestClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, y)
    p = tmp_path_factory.mktemp("arming") / "m.wdl"
    p.write_bytes(woodlot.dumps(m))
    return p


def _child(root, model_file, timeout=120, **env):
    import json

    full = {k: v for k, v in os.environ.items() if not k.startswith("WOODLOT_FAULT")}
    full.update(env)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), str(root), str(model_file)],
                          capture_output=True, text=True, timeout=timeout, env=full)
    out = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    return done.returncode, out, done.stderr


def _base(tmp_path, name):
    root = tmp_path / name
    woodlot.VersionStore(root)  # the same starting store for every child
    return root


def test_the_nth_step_from_process_start_is_the_same_step_every_run(tmp_path, model_file):
    rc, traced, err = _child(_base(tmp_path, "t1"), model_file, WOODLOT_FAULT_TRACE="1")
    assert rc == 0 and traced["result"] == "ok", err
    log = traced["log"]
    assert len(log) == traced["steps"] > 20
    assert any(n.startswith("read_") for n in log) and "link" in log and "lock_acquire" in log, log
    rc, again, err = _child(_base(tmp_path, "t2"), model_file, WOODLOT_FAULT_TRACE="1")
    assert again["log"] == log, "the step sequence of one script is deterministic"
    # Fail at a read step, a link and the last step: each time exactly that step, by name.
    picks = [log.index(next(n for n in log if n.startswith("read_"))) + 1,
             log.index("link") + 1, len(log)]
    for n in picks:
        rc, out, err = _child(_base(tmp_path, f"e{n}"), model_file,
                              WOODLOT_FAULT_AT_STEP=str(n), WOODLOT_FAULT_MODE="error")
        assert rc == 0, err
        assert f"injected fault at I/O step {n} ({log[n - 1]})" in out["result"], (n, out["result"])
        assert out["log"][:n] == log[:n]


def test_a_crash_armed_from_the_environment_aborts_at_that_step(tmp_path, model_file):
    rc, traced, err = _child(_base(tmp_path, "t"), model_file, WOODLOT_FAULT_TRACE="1")
    total = traced["steps"]
    for n in (1, total // 2, total):
        rc, out, err = _child(_base(tmp_path, f"c{n}"), model_file, WOODLOT_FAULT_AT_STEP=str(n))
        assert rc == -signal.SIGABRT, (n, rc, err)
    # Past the last step nothing fires; a typo arms nothing.
    for value in (str(total + 1), "not-a-number"):
        rc, out, err = _child(_base(tmp_path, f"p{value}"), model_file, WOODLOT_FAULT_AT_STEP=value)
        assert rc == 0 and out["result"] == "ok", (value, err)


def test_arming_from_python_counts_from_process_start(tmp_path, model_file):
    code = textwrap.dedent("""
        import sys, woodlot
        from woodlot import _native
        s = woodlot.VersionStore(sys.argv[1])
        s.versions()
        at = _native._store_fault_process_steps() + 2
        _native._store_fault_arm_process(at, crash=False)
        try:
            s.save(open(sys.argv[2], "rb").read())
        except OSError as e:
            print(at, e)
    """)
    done = subprocess.run([sys.executable, "-c", code, str(_base(tmp_path, "py")), str(model_file)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    at, message = done.stdout.split(" ", 1)
    assert f"injected fault at I/O step {at} (" in message, done.stdout


def _save_in_child(root, model_file, **env):
    code = "import sys, woodlot; print(woodlot.VersionStore(sys.argv[1]).save(open(sys.argv[2], 'rb').read()).version)"
    full = dict(os.environ, **env)
    return subprocess.Popen([sys.executable, "-c", code, str(root), str(model_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full)


def test_the_no_lock_switch_skips_the_writer_lock(tmp_path, model_file):
    root = _base(tmp_path, "nolock")
    with open(root / "LOCK", "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        locked = _save_in_child(root, model_file)
        free = _save_in_child(root, model_file, WOODLOT_TEST_NO_LOCK="1")
        out, err = free.communicate(timeout=120)
        assert free.returncode == 0 and out.strip() == "1", err
        time.sleep(1.0)
        assert locked.poll() is None, "a normal writer waits for the lock"
    out, err = locked.communicate(timeout=120)
    assert locked.returncode == 0 and out.strip() == "2", err


def test_alias_and_gc_steps_are_fault_points(tmp_path, model_file):
    from woodlot import _native

    data = model_file.read_bytes()
    base = tmp_path / "base"
    s = woodlot.VersionStore(base)
    s.promote(s.save(data), reason="first")
    (base / "tmp" / "debris.tmp").write_bytes(b"left by a crash")
    os.utime(base / "tmp" / "debris.tmp", (0, 0))
    ops = {
        "set_alias": lambda st: st.set_alias("champion", 1),
        "remove_alias": lambda st: (st.set_alias("x", 1), st.remove_alias("x")),
        "gc": lambda st: st.gc(grace_seconds=0),
    }
    import shutil

    for name, op in ops.items():
        probe = tmp_path / f"{name}-count"
        shutil.copytree(base, probe)
        _native._store_fault_arm(0)
        op(woodlot.VersionStore(probe))
        steps = _native._store_fault_steps()
        writes = [n for n in steps if not n.startswith("read_")]
        assert any(n.startswith("read_") for n in steps), (name, steps)
        assert ("remove" if name == "gc" else "link") in writes, (name, steps)
        for at in range(1, len(steps) + 1):
            root = tmp_path / f"{name}-{at}"
            shutil.copytree(base, root)
            st = woodlot.VersionStore(root)
            _native._store_fault_arm(at)
            try:
                op(st)
                raised = None
            except OSError as e:
                raised = e
            finally:
                _native._store_fault_arm(0)
            where = f"{name}: fault at step {at} ({steps[at - 1]})"
            assert raised is None or "injected fault" in str(raised), (where, raised)
            again = woodlot.VersionStore(root)
            assert again.active.version == 1, where
            assert again.verify().ok, (where, again.verify())
            op(again)  # and the store keeps working
