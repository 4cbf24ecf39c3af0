"""The version store on S3-compatible object storage, against a real S3 endpoint on loopback.

Each test module run starts its own ``moto`` servers (``moto[server]``, in the test extras) on
free loopback ports and stops them at the end (the fixtures ``moto_endpoint`` and
``moto_race_endpoint`` of tests/conftest.py, helpers in tests/_moto.py):

- ``python -m moto.server`` (threaded, as people run it) for the workflow and error tests;
- for the races, moto's same WSGI app under a multi-threaded server that serves requests
  concurrently but, like S3, makes the writes of one key atomic (moto checks ``If-None-Match``
  and then writes without a lock; tests/_moto.py says more). Each race asserts from the
  server's own counters that its requests really overlapped.

Only loopback addresses are used, and every AWS_* variable of the environment is cleared so no
request can go anywhere else.
"""

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("moto")
boto3 = pytest.importorskip("boto3")

import woodlot  # noqa: E402
from woodlot import ConflictError, RandomForestClassifier, StoreError, VersionStore  # noqa: E402
from tests._moto import bucket as _bucket  # noqa: E402
from tests._moto import free_port as _free_port  # noqa: E402
from tests._moto import keys as _keys  # noqa: E402
from tests._moto import options as _options  # noqa: E402
from tests._moto import race_stats  # noqa: E402
from tests._moto import s3_client as _s3  # noqa: E402


@pytest.fixture(autouse=True)
def _no_aws(no_aws_environment):
    """Every test here runs with no AWS_* variable in the environment."""


@pytest.fixture(scope="module")
def models(wine):
    X_train, _, y_train, _ = wine
    v1 = RandomForestClassifier(n_estimators=100, max_depth=4, random_state=42).fit(X_train, y_train)
    v2 = RandomForestClassifier(n_estimators=200, max_depth=6, random_state=42).fit(X_train, y_train)
    return v1, v2


# -------------------------------------------------------------------------------------------
# the workflow
# -------------------------------------------------------------------------------------------


def test_tutorial_workflow_end_to_end_on_s3(moto_endpoint, wine, models):
    _, X_test, _, y_test = wine
    model_v1, model_v2 = models
    bucket = _bucket(moto_endpoint)
    url = f"s3://{bucket}/team/fraud"
    store = VersionStore(url, storage_options=_options(moto_endpoint))
    assert store.path == url

    v1 = store.save(model_v1, description="100 trees, depth 4", tags={"stage": "baseline"})
    store.promote(v1, reason="first deployment")
    v2 = store.save(model_v2, description="200 trees, depth 6")
    assert (v1.version, v2.version) == (1, 2)
    assert v2.parent == 1

    acc_v1 = float(np.mean(store.load(v1).predict(X_test) == y_test))
    acc_v2 = float(np.mean(store.load(v2).predict(X_test) == y_test))
    cmp = store.compare(X_test, y_test)
    assert cmp.metrics["v1"]["accuracy"] == pytest.approx(acc_v1)
    assert cmp.metrics["v2"]["accuracy"] == pytest.approx(acc_v2)

    decision = store.promote_if_better(v2, X_test, y_test, metric="accuracy", min_delta=0.0)
    assert decision.promoted == (acc_v2 >= acc_v1)
    if decision.promoted:
        assert store.active.version == 2

    # Serving runs elsewhere: a second handle (another machine) sees the same store.
    serving = VersionStore(url, storage_options=_options(moto_endpoint))
    assert [v.version for v in serving.versions()] == [1, 2]
    assert serving.active.version == store.active.version

    store.rollback(to=v1, reason="tutorial: roll back to v1")
    restored = serving.load("active", verify=True)
    np.testing.assert_array_equal(restored.predict_proba(X_test), model_v1.predict_proba(X_test))
    assert serving.active.version == 1

    kinds = [e.kind for e in serving.history()]
    assert kinds[:3] == ["save", "promote", "save"] and kinds[-1] == "rollback"
    report = serving.verify()
    assert report.ok, report

    keys = _keys(moto_endpoint, bucket)
    assert all(k.startswith("team/fraud/") for k in keys), keys
    rel = {k[len("team/fraud/"):].split("/")[0] for k in keys}
    assert rel == {"FORMAT", "ACTIVE", "blobs", "versions", "events"}


def test_options_from_the_aws_environment(moto_endpoint, models, monkeypatch):
    bucket = _bucket(moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    store = VersionStore(f"s3://{bucket}")
    v = store.save(models[0])
    assert v.version == 1
    assert "FORMAT" in _keys(moto_endpoint, bucket)


def test_stale_promotion_conflicts_and_writes_nothing(moto_endpoint, model_file):
    store = VersionStore(f"s3://{_bucket(moto_endpoint)}/s", storage_options=_options(moto_endpoint))
    data = model_file.read_bytes()
    for _ in range(3):
        store.save(data)
    store.promote(1)
    store.promote(2, expect_active="v1")
    n = len(store.history())
    with pytest.raises(ConflictError):
        store.promote(3, expect_active="v1")
    assert len(store.history()) == n
    assert store.active.version == 2


def test_identical_models_share_a_blob_and_gc_frees_deleted_ones(moto_endpoint, models):
    bucket = _bucket(moto_endpoint)
    store = VersionStore(f"s3://{bucket}/gc", storage_options=_options(moto_endpoint))
    a = store.save(models[0])
    b = store.save(models[0])
    c = store.save(models[1])
    assert a.digest == b.digest != c.digest
    store.promote(a)
    store.delete(c)
    assert store.gc(dry_run=False, grace_seconds=3600)["removed"] == []  # too young
    report = store.gc(dry_run=False, grace_seconds=0)
    removed = [item["path"] for item in report["removed"]]
    assert f"blobs/{c.digest}" in removed
    assert f"gc/blobs/{c.digest}" not in _keys(moto_endpoint, bucket)
    assert store.verify().ok


def test_a_non_store_prefix_is_refused(moto_endpoint):
    bucket = _bucket(moto_endpoint)
    _s3(moto_endpoint).put_object(Bucket=bucket, Key="data/thesis.tex", Body=b"...")
    with pytest.raises(StoreError, match="not a woodlot store"):
        VersionStore(f"s3://{bucket}/data", storage_options=_options(moto_endpoint))
    assert _keys(moto_endpoint, bucket) == ["data/thesis.tex"]


# -------------------------------------------------------------------------------------------
# races, against a multi-threaded server (each key's writes atomic, as on S3)
# -------------------------------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from woodlot import VersionStore, ConflictError

    mode, url, options, model_path, go = sys.argv[1:6]
    data = open(model_path, "rb").read()
    store = VersionStore(url, storage_options=json.loads(options))
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.0005)
    if mode == "save":
        for _ in range(int(sys.argv[6])):
            print(store.save(data).version, flush=True)
    elif mode == "promote":
        try:
            store.promote(int(sys.argv[6]), expect_active="v1")
            print("won", flush=True)
        except ConflictError:
            print("conflict", flush=True)
    """
)


def _spawn(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _start_together(procs, go):
    for p in procs:
        line = p.stdout.readline().strip()
        assert line == "ready", p.stderr.read()
    go.write_text("go")


def _assert_overlapped(endpoint):
    """The race's requests were served concurrently: several at once, on several threads."""
    stats = race_stats(endpoint)
    print(f"race: {stats}")
    assert stats["max_in_flight"] >= 2 and stats["threads"] >= 2, f"the requests did not overlap: {stats}"


def test_the_race_server_serves_requests_concurrently(moto_race_endpoint):
    # Eight clients each send one request that the server holds for 0.5 s: served one at a time
    # they take at least 4 s, served concurrently about 0.5 s. The server's own count of
    # requests in flight and of threads says the same.
    import threading
    import urllib.request

    bucket = _bucket(moto_race_endpoint)
    race_stats(moto_race_endpoint, reset=True)
    errors = []

    def client():
        try:
            req = urllib.request.Request(f"{moto_race_endpoint}/{bucket}?list-type=2", headers={"X-Woodlot-Hold": "0.5"})
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=client) for _ in range(8)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - started
    stats = race_stats(moto_race_endpoint)
    print(f"race server: 8 requests held 0.5 s each in {elapsed:.2f} s, {stats}")
    assert not errors, errors[:3]
    assert stats["requests"] == 8, stats
    assert stats["max_in_flight"] >= 4 and stats["threads"] >= 4, stats
    assert elapsed < 2.5, f"8 requests held 0.5 s took {elapsed:.2f} s: they were not served concurrently"


def test_concurrent_saves_from_processes_are_unique_and_gapless(
    moto_race_endpoint, model_file, tmp_path
):
    url = f"s3://{_bucket(moto_race_endpoint)}/race"
    options = _options(moto_race_endpoint)
    VersionStore(url, storage_options=options)
    go = tmp_path / "go"
    procs = [_spawn("save", url, json.dumps(options), model_file, go, 3) for _ in range(4)]
    race_stats(moto_race_endpoint, reset=True)
    _start_together(procs, go)
    got = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        got += [int(v) for v in out.split()]
    _assert_overlapped(moto_race_endpoint)
    assert sorted(got) == list(range(1, 13))
    store = VersionStore(url, storage_options=options)
    assert [v.version for v in store.versions()] == list(range(1, 13))
    assert [e.kind for e in store.history()].count("save") == 12
    report = store.verify()
    assert report.ok, report


def test_racing_promotions_from_processes_have_exactly_one_winner(
    moto_race_endpoint, model_file, tmp_path
):
    url = f"s3://{_bucket(moto_race_endpoint)}/race"
    options = _options(moto_race_endpoint)
    store = VersionStore(url, storage_options=options)
    data = model_file.read_bytes()
    for _ in range(7):
        store.save(data)
    store.promote(1)
    go = tmp_path / "go"
    procs = [_spawn("promote", url, json.dumps(options), model_file, go, v) for v in range(2, 8)]
    race_stats(moto_race_endpoint, reset=True)
    _start_together(procs, go)
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(out.strip())
    _assert_overlapped(moto_race_endpoint)
    assert results.count("won") == 1 and results.count("conflict") == 5, results
    promotes = [e for e in store.history() if e.kind == "promote"]
    assert len(promotes) == 2
    assert store.active.version == promotes[-1].raw["version"]


_INHERITED = {}


def _save_in_child(_):
    return _INHERITED["store"].save(_INHERITED["data"]).version


def test_a_store_opened_before_fork_works_in_the_children(moto_race_endpoint, model_file):
    # The parent's runtime and connections are not used in a forked child: it builds its own.
    import multiprocessing

    url = f"s3://{_bucket(moto_race_endpoint)}/fork"
    store = VersionStore(url, storage_options=_options(moto_race_endpoint))
    data = model_file.read_bytes()
    store.save(data)
    _INHERITED.update(store=store, data=data)
    ctx = multiprocessing.get_context("fork")
    try:
        with ctx.Pool(2) as pool:
            got = pool.map(_save_in_child, range(4), chunksize=1)
    finally:
        _INHERITED.clear()
    assert sorted(got) == [2, 3, 4, 5]
    store.save(data)  # the parent's own client still works
    assert [v.version for v in store.versions()] == [1, 2, 3, 4, 5, 6]


# -------------------------------------------------------------------------------------------
# errors
# -------------------------------------------------------------------------------------------


def test_a_wrong_endpoint_fails_fast_with_a_clear_error():
    endpoint = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(OSError) as info:
        VersionStore(
            "s3://bucket/models",
            storage_options=_options(endpoint, connect_timeout=1, timeout=2, max_retries=1),
        )
    assert time.monotonic() - started < 15
    message = str(info.value)
    assert endpoint in message and "s3://bucket/models" in message
    assert "endpoint_url" in message
    assert isinstance(info.value, ConnectionError), type(info.value)


def test_a_missing_bucket_is_named(moto_endpoint):
    with pytest.raises(StoreError) as info:
        VersionStore("s3://no-such-bucket-here/models", storage_options=_options(moto_endpoint))
    message = str(info.value)
    assert "no-such-bucket-here" in message and "does not exist" in message
    assert moto_endpoint in message


def test_bad_urls_and_options_are_refused_before_any_request(tmp_path):
    with pytest.raises(ValueError, match="unknown storage option"):
        VersionStore("s3://bucket/p", storage_options={"endpont_url": "http://127.0.0.1:1"})
    with pytest.raises(ValueError, match="s3:// stores only"):
        VersionStore(tmp_path / "local", storage_options={"region": "us-east-1"})
    with pytest.raises(ValueError, match="not supported"):
        VersionStore("gs://bucket/p")
    with pytest.raises(ValueError, match="not a valid store URL"):
        VersionStore("s3://bucket/a/../b")
    with pytest.raises(TypeError):
        VersionStore("s3://bucket/p", storage_options={"timeout": object()})
