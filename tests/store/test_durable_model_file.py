"""``woodlot._native.write_file_durably`` (issue 8): the Rust core writes a model file the way
the store writes its own records (temp file in the same directory, fsync, rename, directory
fsync), with permissions from the umask rather than the ``0600`` of ``tempfile.mkstemp``, and
raises ``OSError`` naming the path."""

import os
import stat
import subprocess
import sys
import textwrap

import pytest

from woodlot import _native


def test_writes_whole_files_and_replaces_atomically(tmp_path):
    path = tmp_path / "model.wdl"
    _native.write_file_durably(str(path), b"first")
    _native.write_file_durably(str(path), b"second" * 1000)
    assert path.read_bytes() == b"second" * 1000
    assert os.listdir(tmp_path) == ["model.wdl"], "no temp file left beside it"


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_permissions_come_from_the_umask(tmp_path, umask):
    path = tmp_path / "model.wdl"
    code = textwrap.dedent(f"""
        import os
        from woodlot import _native
        os.umask({umask})
        _native.write_file_durably({str(path)!r}, b"x")
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_errors_are_oserrors_naming_the_path(tmp_path):
    missing = tmp_path / "no-such-dir" / "model.wdl"
    with pytest.raises(FileNotFoundError) as e:
        _native.write_file_durably(str(missing), b"x")
    assert e.value.filename == str(missing) and e.value.errno == 2
    assert str(missing) in str(e.value)
    target = tmp_path / "a-directory"
    target.mkdir()
    with pytest.raises(OSError) as e:
        _native.write_file_durably(str(target), b"x")
    assert e.value.filename == str(target)
    assert os.listdir(tmp_path) == ["a-directory"], "a failed write leaves no temp file"
    with pytest.raises(TypeError):
        _native.write_file_durably(str(tmp_path / "m.wdl"), "not bytes")


def test_every_step_is_a_fault_point_and_a_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.wdl"
    _native.write_file_durably(str(path), b"old")
    _native._store_fault_arm(0)
    _native.write_file_durably(str(path), b"old")
    steps = _native._store_fault_steps()
    assert steps == ["create_temp", "write_temp", "fsync_temp", "rename", "fsync_dir"], steps
    for at in range(1, steps.index("rename") + 2):
        _native._store_fault_arm(at)
        try:
            with pytest.raises(OSError, match="injected fault") as e:
                _native.write_file_durably(str(path), b"new")
        finally:
            _native._store_fault_arm(0)
        assert e.value.filename == str(path)
        assert path.read_bytes() == b"old", f"step {at} ({steps[at - 1]})"
        assert os.listdir(tmp_path) == ["model.wdl"], f"step {at} left a temp file"


def test_woodlot_dump_is_written_by_the_core_with_the_umasks_permissions(tmp_path):
    # woodlot.dump used tempfile.mkstemp, so every model file came out 0600 whatever the umask,
    # and was not fsynced in its directory. It now goes through write_file_durably: the same
    # five I/O steps, and 0666 less the umask.
    path = tmp_path / "model.wdl"
    code = textwrap.dedent(f"""
        import os
        import numpy as np
        import woodlot
        from woodlot import _native
        X = np.random.default_rng(0).normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)
        model = woodlot.RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
        os.umask(0o022)
        _native._store_fault_arm(0)
        woodlot.dump(model, {str(path)!r})
        print(",".join(_native._store_fault_steps()))
        assert (woodlot.load({str(path)!r}).predict_proba(X) == model.predict_proba(X)).all()
    """)
    out = subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True, text=True)
    assert out.stdout.strip() == "create_temp,write_temp,fsync_temp,rename,fsync_dir"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["model.wdl"]
