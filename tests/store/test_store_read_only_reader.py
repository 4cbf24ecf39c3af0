"""A store this process may read but not write (issue 8): another team's store, a read-only
mount. Every read works, and ``gc(dry_run=True)`` works while the writer lock file exists (the
lock is taken on a read-only descriptor, which ``flock`` allows).

The reader runs as ``nobody`` (uid/gid 65534) through ``setpriv``, on a store root created;
see test_store_shared_group.py for why root is needed and how a skip becomes a failure in CI."""

import os
import shutil
import tempfile

import pytest

from tests.store.test_store_shared_group import require_privileged, run_as

import woodlot
from woodlot import RandomForestClassifier

NOBODY = 65534

READS = """
    import numpy as np
    import woodlot
    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    s = woodlot.VersionStore({root!r})
    out = {{}}
    out["versions"] = [v.version for v in s.versions()]
    out["active"] = s.active.version
    out["get"] = s.get("champion").version
    out["predict"] = int((s.load("active", verify=True).predict(X) == y).sum())
    out["history"] = [e.kind for e in s.history()]
    out["aliases"] = s.aliases
    out["verify"] = bool(s.verify().ok)
    cmp = s.compare(X, y, versions=[1, 2])
    out["compared"] = len(cmp.versions) == 2
    out["record_error"] = cmp.record_error
    {extra}
    print(json.dumps(out))
"""


@pytest.fixture
def read_only_store(iris):
    require_privileged()
    X, y = iris
    base = tempfile.mkdtemp(prefix="woodlot-ro-")
    os.chmod(base, 0o755)
    root = os.path.join(base, "models")
    old = os.umask(0o022)
    try:
        s = woodlot.VersionStore(root)
        for seed in (0, 1):
            m = RandomForestClassifier(n_estimators=4, max_depth=3, random_state=seed).fit(X, y)
            s.save(m)
        s.promote(1, reason="setup")
        s.set_alias("champion", 2)
        expected = int((s.load("active").predict(X) == y).sum())
    finally:
        os.umask(old)
    try:
        yield root, expected
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _check_reads(out, expected):
    assert out["versions"] == [1, 2] and out["active"] == 1 and out["get"] == 2, out
    assert out["predict"] == expected and out["verify"] and out["compared"], out
    assert out["aliases"] == {"champion": "v2"} or out["aliases"] == {"champion": 2}, out
    assert out["history"][:2] == ["save", "save"], out


def test_every_read_and_a_dry_run_gc_work_for_a_reader_who_may_not_write(read_only_store):
    root, expected = read_only_store
    assert os.path.exists(os.path.join(root, "LOCK"))
    out = run_as(NOBODY, NOBODY, READS.format(root=root, extra="""
    out["gc"] = s.gc(dry_run=True, grace_seconds=0)["dry_run"]
    try:
        s.save(s.load(1))
        out["save"] = "saved?!"
    except PermissionError as e:
        out["save"] = "denied"
    """))
    _check_reads(out, expected)
    assert out["gc"] is True and out["save"] == "denied", out
    assert out["record_error"], "recording the comparison cannot work here, and says so"


def test_every_read_works_without_a_lock_file(read_only_store):
    root, expected = read_only_store
    os.remove(os.path.join(root, "LOCK"))
    out = run_as(NOBODY, NOBODY, READS.format(root=root, extra=""))
    _check_reads(out, expected)
    assert not os.path.exists(os.path.join(root, "LOCK"))
