"""VersionStore: the public API of issue 3, end to end through the real extension."""

import json
import os

import numpy as np
import pytest

import woodlot
from woodlot import (
    ConflictError,
    CorruptModelError,
    InvalidNameError,
    RandomForestClassifier,
    StoreError,
    VersionNotFoundError,
    VersionStore,
    WoodlotError,
)


@pytest.fixture(scope="module")
def models(wine):
    X_train, X_test, y_train, y_test = wine
    small = RandomForestClassifier(n_estimators=10, max_depth=2, random_state=0).fit(X_train, y_train)
    big = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0).fit(X_train, y_train)
    return small, big


@pytest.fixture
def store(tmp_path):
    return VersionStore(tmp_path / "models")


def test_save_numbers_and_records_lineage(store, models, wine):
    small, big = models
    v1 = store.save(small, tags={"team": "wine"}, description="baseline", metrics={"cv": 0.9})
    assert (v1.version, v1.name) == (1, "v1")
    assert v1.n_trees == 10 and v1.n_features == 13 and v1.n_classes == 3
    assert v1.classes == [0, 1, 2]
    assert v1.params["n_estimators"] == 10 and v1.params["max_depth"] == 2
    assert len(v1.training_fingerprint) >= 32
    assert v1.n_samples == len(wine[0]) and v1.fit_seconds >= 0
    assert v1.user and v1.host and v1.created.endswith("Z")
    assert len(v1.digest) == 64 and os.path.isfile(os.path.join(store.path, "blobs", v1.digest))
    assert v1.size == len(woodlot.dumps(small))
    assert v1.tags == {"team": "wine"} and v1.description == "baseline" and v1.metrics == {"cv": 0.9}
    assert v1.parent is None and v1.probe_rows > 0
    store.promote(v1)
    v2 = store.save(big, tags=["candidate"])
    assert v2.version == 2 and v2.parent == 1 and v2.tags == {"candidate": ""}
    v3 = store.save(big, parent="v2")
    assert v3.parent == 2 and v3.digest == v2.digest
    assert [v.name for v in store.versions()] == ["v1", "v2", "v3"]
    assert len(store) == 3 and "v2" in store and 7 not in store


def test_references(store, models):
    small, big = models
    store.save(small)
    store.save(big)
    assert store.get(1).name == store.get("v1").name == "v1"
    assert store.get("latest").version == 2
    assert store.get(store.get(2)).version == 2
    with pytest.raises(VersionNotFoundError, match="no version is active"):
        store.get("active")
    assert store.active is None
    with pytest.raises(KeyError):
        store.get(9)
    with pytest.raises(VersionNotFoundError):
        store.get("v0")
    with pytest.raises(VersionNotFoundError):
        store.get("nosuchalias")
    with pytest.raises(TypeError):
        store.get(True)
    with pytest.raises(TypeError):
        store.get(1.5)
    # Membership answers like a dict: names that could never be versions are simply absent.
    assert 1 in store and "v2" in store and "latest" in store
    assert 9 not in store and "nosuchalias" not in store
    assert "../x" not in store and "a/b" not in store


def test_load_round_trips_and_verifies(store, models, wine):
    _, X_test, _, _ = wine
    small, _ = models
    store.save(small)
    for verify in (False, True):
        loaded = store.load("v1", verify=verify)
        np.testing.assert_array_equal(loaded.predict_proba(X_test), small.predict_proba(X_test))
    store.promote(1)
    np.testing.assert_array_equal(store.load().predict(X_test), small.predict(X_test))


def test_promote_rollback_history(store, models):
    small, big = models
    v1, v2 = store.save(small), store.save(big)
    with pytest.raises(StoreError, match="nothing to roll back"):
        store.rollback()
    store.promote(v1, reason="first deploy", expect_active="none")
    with pytest.raises(ConflictError):
        store.promote(v2, expect_active="none")
    store.promote(v2, reason="better", expect_active="v1")
    assert store.active.name == "v2"
    with pytest.raises(ConflictError, match="v2"):
        store.promote(v1, expect_active=1)
    back = store.rollback(reason="bad deploy")
    assert back.name == "v1" and store.active.name == "v1"
    with pytest.raises(StoreError, match="nothing to roll back"):
        store.rollback()
    assert store.rollback(to="v1").name == "v1"  # already active: a no-op
    kinds = [(e.kind, e.version, e.active) for e in store.history()]
    assert kinds == [
        ("save", "v1", None),
        ("save", "v2", None),
        ("promote", "v1", "v1"),
        ("promote", "v2", "v2"),
        ("rollback", "v1", "v1"),
    ]
    ev = store.history()[4]
    assert ev.reason == "bad deploy" and ev.user and ev.host and ev.pid == os.getpid()
    assert "Event(#5" in repr(ev)


def test_aliases(store, models):
    small, big = models
    store.save(small)
    store.save(big)
    store.set_alias("champion", "v1")
    store.set_alias("challenger", 2)
    assert store.aliases == {"challenger": "v2", "champion": "v1"}
    assert store.get("champion").name == "v1"
    store.set_alias("champion", "challenger")
    assert store.get("champion").name == "v2"
    store.remove_alias("challenger")
    assert store.aliases == {"champion": "v2"}
    with pytest.raises(VersionNotFoundError):
        store.remove_alias("challenger")
    for bad in ["../x", "a/b", "a\\b", "/abs", ".", "..", "a\0b", "a\nb", "%2e%2e", "x" * 300,
                "cafe\u0301", "caf\u00e9", "x\u202egpj", "latest", "active", "none", "v3", "7", ""]:
        with pytest.raises(InvalidNameError):
            store.set_alias(bad, 1)
    assert isinstance(InvalidNameError("x"), ValueError)
    with pytest.raises(TypeError):
        store.set_alias(3, 1)
    root = store.path
    # Nothing a user typed became a file anywhere.
    for dirpath, dirnames, filenames in os.walk(os.path.dirname(root)):
        for n in dirnames + filenames:
            assert "x" * 20 not in n and "%2e" not in n and ".." != n


def test_delete_and_gc(store, models):
    small, big = models
    v1, v2 = store.save(small), store.save(big)
    store.promote(v1)
    store.set_alias("canary", v2)
    with pytest.raises(StoreError, match="active"):
        store.delete(v1)
    with pytest.raises(StoreError, match="canary"):
        store.delete(v2)
    ev = store.delete(v2, force=True, reason="bad features")
    assert ev.kind == "delete" and ev.reason == "bad features"
    assert store.aliases == {}
    with pytest.raises(VersionNotFoundError, match="deleted"):
        store.get(2)
    assert store.save(big).version == 3  # numbers are never reused
    assert store.gc(dry_run=True)["removed"] == []  # v3 shares v2's blob; all is fresh anyway
    store.delete(3)
    dry = store.gc(dry_run=True, grace_seconds=0)
    assert dry["dry_run"] and any(i["path"].startswith("blobs/") for i in dry["removed"])
    done = store.gc(grace_seconds=0)
    assert done["removed"] == dry["removed"] and done["bytes_freed"] > 0
    assert store.verify().ok
    with pytest.raises(ValueError):
        store.gc(grace_seconds=float("nan"))


def test_verify_and_tampering(store, models):
    small, big = models
    v1 = store.save(small)
    store.save(big)
    report = store.verify()
    assert report.ok and bool(report) and report.versions_checked == 2 and report.events_checked == 2
    assert "OK" in str(report)
    blob = os.path.join(store.path, "blobs", v1.digest)
    data = bytearray(open(blob, "rb").read())
    data[len(data) // 2] ^= 0x01
    with open(blob, "wb") as f:
        f.write(data)
    report = store.verify()
    assert not report.ok and report.problems[0]["subject"] == "v1"
    with pytest.raises(CorruptModelError, match="v1"):
        store.load(1)
    with pytest.raises(CorruptModelError):
        store.promote(1)
    store.promote(2)
    with pytest.raises(CorruptModelError, match="refusing to roll back"):
        store.rollback(to=1)
    assert store.active.name == "v2"
    # Saving the same model again repairs the damaged blob.
    store.save(small)
    assert store.verify().ok


def test_save_rejects_bad_input(store, models):
    small, _ = models
    from sklearn.ensemble import RandomForestClassifier as SkForest

    with pytest.raises(TypeError, match="woodlot.RandomForestClassifier"):
        store.save(SkForest())
    with pytest.raises(CorruptModelError):
        store.save(b"not a model")
    with pytest.raises(ValueError, match="metrics"):
        store.save(small, metrics={"x": float("nan")})
    with pytest.raises(TypeError):
        store.save(small, metrics=[1])
    with pytest.raises(ValueError, match="control"):
        store.save(small, description="bad\x1b[31m")
    with pytest.raises(TypeError):
        store.save(small, tags=5)
    assert store.versions() == []


def test_store_refuses_foreign_directories_and_files(tmp_path):
    (tmp_path / "thesis.tex").write_text("...")
    with pytest.raises(StoreError, match="not a woodlot store"):
        VersionStore(tmp_path)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(WoodlotError):
        VersionStore(f)


def test_reopened_store_sees_everything(tmp_path, models):
    small, big = models
    a = VersionStore(tmp_path / "s")
    a.save(small)
    a.promote(1)
    b = VersionStore(str(tmp_path / "s"))
    assert b.active.name == "v1" and len(b.versions()) == 1
    assert "1 versions, active v1" in repr(b)


def test_manifest_files_are_plain_json(store, models):
    small, _ = models
    store.save(small)
    with open(os.path.join(store.path, "versions", "0000000001.json")) as f:
        m = json.load(f)
    assert m["version"] == 1 and m["model"]["kind"] == "RandomForestClassifier"
    assert {"FORMAT", "blobs", "events", "tmp", "versions"} <= set(os.listdir(store.path))


def test_threads_share_one_store(store, models):
    from concurrent.futures import ThreadPoolExecutor

    small, big = models
    data = [woodlot.dumps(small), woodlot.dumps(big)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: store.save(data[i % 2]).version, range(12)))
    assert sorted(got) == list(range(1, 13))
    with ThreadPoolExecutor(4) as pool:
        listed = list(pool.map(lambda _: len(store.versions()), range(8)))
    assert listed == [12] * 8
    assert store.verify().ok


def test_fault_switch_is_reachable_for_the_reliability_suite(store, models):
    from woodlot import _native

    small, _ = models
    _native._store_fault_arm(0)
    store.save(small)
    steps = _native._store_fault_steps()
    assert "link" in steps and "fsync_temp" in steps and "fsync_dir" in steps
    n = len(steps)
    for at in range(1, n + 1):
        before = len(store.versions())
        _native._store_fault_arm(at)
        try:
            store.save(small)
        except OSError as e:
            assert "injected fault" in str(e)
        finally:
            _native._store_fault_arm(0)
        assert len(store.versions()) in (before, before + 1)
        assert store.verify().ok


def test_a_rollback_to_a_named_version_is_itself_undone_by_a_plain_rollback(store, models):
    # v1 -> v2 -> v3 active in turn; rollback(to=v1) jumps back two steps; a plain rollback
    # then returns to v3, the version the jump left, not to v2 before it.
    small, big = models
    for m in (small, big, small):
        store.promote(store.save(m))
    assert store.rollback(to="v1", reason="jump").name == "v1"
    assert store.rollback(reason="undo the jump").name == "v3"
    assert store.active.name == "v3"
    # And the walk goes on from there: v2, then v1.
    assert [store.rollback().name for _ in range(2)] == ["v2", "v1"]
