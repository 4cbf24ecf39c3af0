"""Hostile or stray files inside a store directory (issue 8): a planted FIFO or symlink never
hangs or redirects a read, and names that are not a record's canonical name (``7.json`` beside
``0000000007.json``, ``07.json``, a backup) neither break ``versions()``, the history or gc nor
show up as versions.

Reads that could hang run in a child process with a timeout, so a regression fails the test
instead of hanging the suite."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import woodlot
from woodlot import RandomForestClassifier, StoreError, VersionStore


@pytest.fixture(scope="module")
def model(iris):
    X, y = iris
    return RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)


@pytest.fixture
def store(tmp_path, model):
    s = VersionStore(tmp_path / "models")
    s.promote(s.save(model), reason="first")
    s.save(model, tags={"second": "1"})
    return s


def _in_child(code: str, timeout: float = 60.0) -> str:
    """Runs `code` in a fresh interpreter; its last line of stdout is the result."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _outcome_of(root, call: str) -> str:
    """The exception class and message of `call` on the store at `root`, or "ok"."""
    return _in_child(f"""
        import woodlot
        s = woodlot.VersionStore({str(root)!r})
        try:
            {call}
            print("ok")
        except woodlot.WoodlotError as e:
            print(type(e).__name__ + ": " + str(e).replace("\\n", " "))
    """)


def test_a_planted_fifo_is_refused_without_hanging(store):
    v1 = store.get(1)
    blob = os.path.join(store.path, "blobs", v1.digest)
    os.remove(blob)
    os.mkfifo(blob)
    manifest = os.path.join(store.path, "versions", "0000000002.json")
    os.remove(manifest)
    os.mkfifo(manifest)
    for call in ("s.load('active')", "s.get(2)"):
        got = _outcome_of(store.path, call)
        assert got.startswith("StoreError: ") and "FIFO" in got and "not a regular file" in got, (call, got)


def test_a_planted_symlink_does_not_redirect_a_read(store, model, tmp_path):
    v1 = store.get(1)
    blob = os.path.join(store.path, "blobs", v1.digest)
    # The very same bytes, outside the store: a redirected read would even pass the checksum.
    outside = tmp_path / "outside.wdl"
    shutil.copyfile(blob, outside)
    os.remove(blob)
    os.symlink(outside, blob)
    with pytest.raises(StoreError, match="symbolic link"):
        store.load("active")
    hint = os.path.join(store.path, "ACTIVE")
    os.remove(hint)
    os.symlink(tmp_path / "nowhere", hint)
    # The head hint is only a hint: a refused one is skipped or reported, never followed.
    got = _outcome_of(store.path, "s.history()")
    assert got == "ok" or ("StoreError" in got and "symbolic link" in got), got
    assert not (tmp_path / "nowhere").exists()


def test_stray_record_names_do_not_break_versions_history_or_gc(store):
    root = store.path
    versions_before = [v.name for v in store.versions()]
    history_before = [e.kind for e in store.history()]
    manifest = os.path.join(root, "versions", "0000000001.json")
    event = os.path.join(root, "events", "000000000001.json")
    for stray in ("1.json", "01.json", "5.json", "0000000001.json.bak", "7.deleted"):
        shutil.copyfile(manifest, os.path.join(root, "versions", stray))
    for stray in ("1.json", "9.json", "000000000001.json~"):
        shutil.copyfile(event, os.path.join(root, "events", stray))
    fresh = VersionStore(root)
    assert [v.name for v in fresh.versions()] == versions_before
    assert [e.kind for e in fresh.history()] == history_before
    assert fresh.active.version == 1
    fresh.gc(grace_seconds=0)
    fresh.promote(2, reason="still writable", expect_active=1)
    v3 = fresh.save(fresh.load(1))
    assert v3.version == 3
    assert [v.name for v in VersionStore(root).versions()] == ["v1", "v2", "v3"]
