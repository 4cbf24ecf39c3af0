"""gc on object storage never deletes a blob that a concurrent save is reusing (issue 8).

Against a real S3 endpoint (moto's server on loopback, started by the fixtures of
``tests/conftest.py``). The interleaving is deterministic: a test hook
(``_native._store_gc_pause_arm``) stops gc, running in a thread of this process, at a named
point of its sweep; a second store handle saves at exactly that moment; then gc goes on.

The scenario is the one a one-pass gc loses: v2 is deleted, so its model blob is unreferenced
and old; a new save of the same model reuses that blob while gc, from its own listing, still
believes nothing references it.
"""

import threading

import numpy as np
import pytest

pytest.importorskip("moto")
pytest.importorskip("boto3")

from tests._moto import bucket as _bucket  # noqa: E402
from tests._moto import keys as _keys  # noqa: E402
from tests._moto import options as _options  # noqa: E402

from woodlot import RandomForestClassifier, VersionStore, _native  # noqa: E402


@pytest.fixture(autouse=True)
def _no_aws(no_aws_environment):
    """Every test here runs with no AWS_* variable in the environment (moto_endpoint is a
    fixture of tests/conftest.py)."""


@pytest.fixture(scope="module")
def models():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] > 0).astype(int)
    fit = lambda seed: RandomForestClassifier(n_estimators=5, max_depth=3, random_state=seed).fit(X, y)  # noqa: E731
    return fit(0), fit(1)


def _store_with_garbage(endpoint, models):
    """v1 active; v2 deleted, so its model blob is unreferenced; returns (store, url, v2)."""
    bucket = _bucket(endpoint)
    url = f"s3://{bucket}/m"
    s = VersionStore(url, storage_options=_options(endpoint))
    v1 = s.save(models[0])
    v2 = s.save(models[1])
    s.promote(v1)
    s.delete(v2)
    return s, url, bucket, v2


def _gc_in_thread(store, out):
    def run():
        try:
            out["report"] = store.gc(grace_seconds=0)
        except BaseException as e:  # reported by the test
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    return t


def _run_interleaved(endpoint, models, stage):
    gc_store, url, bucket, v2 = _store_with_garbage(endpoint, models)
    blob = f"m/blobs/{v2.digest}"
    first = gc_store.gc(grace_seconds=0)
    assert first["removed"] == [] and first["marked"] >= 1, first  # phase one only marks
    assert f"m/gc/{v2.digest}" in _keys(endpoint, bucket)
    out = {}
    _native._store_gc_pause_arm(stage)
    t = _gc_in_thread(gc_store, out)
    try:
        assert _native._store_gc_pause_wait(60.0), "gc never reached the pause point"
        # gc has decided (from its listing) that v2's blob is garbage; now a save reuses it.
        saver = VersionStore(url, storage_options=_options(endpoint))
        v3 = saver.save(models[1])
        assert v3.digest == v2.digest
    finally:
        _native._store_gc_pause_release()
        t.join(120)
    assert not t.is_alive()
    assert "error" not in out, out.get("error")
    check = VersionStore(url, storage_options=_options(endpoint))
    keys = _keys(endpoint, bucket)
    for b in (blob, f"m/blobs/{v3.manifest['probes']['digest']}"):
        assert b in keys, f"gc deleted {b}, which v{v3.version} references"
    check.load(v3.version, verify=True)
    report = check.verify()
    assert report.ok, report.problems
    return out["report"], v3


def test_a_save_reusing_a_marked_blob_before_the_sweep_keeps_it(moto_endpoint, models):
    # The save sees gc's mark, removes it and writes the blob again; the sweep then finds the
    # mark gone and leaves the blob.
    report, v3 = _run_interleaved(moto_endpoint, models, "sweep")
    assert not any(v3.digest in i["path"] for i in report["removed"]), report


def test_a_save_landing_between_the_mark_check_and_the_delete_gets_its_blob_back(moto_endpoint, models):
    # The narrowest window: gc checked the mark of the first of v2's blobs and is about to
    # delete it. It deletes, re-lists the manifests, finds v3 and writes the blob back.
    report, v3 = _run_interleaved(moto_endpoint, models, "delete")
    mine = {f"blobs/{v3.digest}", f"blobs/{v3.manifest['probes']['digest']}"}
    assert report["restored"] and set(report["restored"]) <= mine, report
    assert not mine & {i["path"] for i in report["removed"]}, report


def test_an_unreferenced_blob_goes_only_on_a_later_run_and_a_dry_run_writes_nothing(moto_endpoint, models):
    s, url, bucket, v2 = _store_with_garbage(moto_endpoint, models)
    blob = f"m/blobs/{v2.digest}"
    before = _keys(moto_endpoint, bucket)
    dry = s.gc(dry_run=True, grace_seconds=0)
    assert dry["removed"] == [] and dry["marked"] >= 1
    assert _keys(moto_endpoint, bucket) == before, "a dry run wrote something"
    first = s.gc(grace_seconds=0)
    assert first["removed"] == [] and blob in _keys(moto_endpoint, bucket)
    # Marked too recently for an hour's grace (ages from the service's own clock).
    kept = s.gc(grace_seconds=3600)
    assert kept["removed"] == [] and kept["kept_recent"] >= 1
    dry = s.gc(dry_run=True, grace_seconds=0)
    assert any(i["path"] == f"blobs/{v2.digest}" for i in dry["removed"])
    second = s.gc(grace_seconds=0)
    assert any(i["path"] == f"blobs/{v2.digest}" for i in second["removed"])
    keys = _keys(moto_endpoint, bucket)
    assert blob not in keys and f"m/gc/{v2.digest}" not in keys
    s.load("active", verify=True)
    assert s.verify().ok
