"""Object storage lists only canonical record names too (issue 8): a stray ``versions/1.json``
or ``events/5.json`` (an upload by hand, a sync tool's copy) beside the store's own
``0000000001.json`` neither duplicates a version nor breaks ``versions()``, the history or gc.

Runs against moto's S3 server on loopback, through the fixtures of tests/conftest.py."""

import pytest

pytest.importorskip("moto")
pytest.importorskip("boto3")

from tests._moto import bucket as _bucket  # noqa: E402
from tests._moto import options as _options  # noqa: E402
from tests._moto import s3_client as _s3  # noqa: E402

from woodlot import RandomForestClassifier, VersionStore  # noqa: E402


@pytest.fixture(autouse=True)
def _no_aws(no_aws_environment):
    """Every test here runs with no AWS_* variable in the environment (moto_endpoint is a
    fixture of tests/conftest.py)."""


def test_stray_object_names_are_not_records(moto_endpoint, iris):
    X, y = iris
    bucket = _bucket(moto_endpoint)
    url = f"s3://{bucket}/team"
    s = VersionStore(url, storage_options=_options(moto_endpoint))
    for seed in (0, 1):
        s.save(RandomForestClassifier(n_estimators=3, max_depth=2, random_state=seed).fit(X, y))
    s.promote(1, reason="first")
    before = ([v.name for v in s.versions()], [e.kind for e in s.history()])
    client = _s3(moto_endpoint)
    manifest = client.get_object(Bucket=bucket, Key="team/versions/0000000001.json")["Body"].read()
    event = client.get_object(Bucket=bucket, Key="team/events/000000000001.json")["Body"].read()
    for key in ("versions/1.json", "versions/01.json", "versions/5.json", "versions/3.deleted"):
        client.put_object(Bucket=bucket, Key=f"team/{key}", Body=manifest)
    for key in ("events/1.json", "events/9.json", "events/000000000001.json.bak"):
        client.put_object(Bucket=bucket, Key=f"team/{key}", Body=event)
    fresh = VersionStore(url, storage_options=_options(moto_endpoint))
    assert ([v.name for v in fresh.versions()], [e.kind for e in fresh.history()]) == before
    assert fresh.active.version == 1
    fresh.gc(grace_seconds=0)
    fresh.promote(2, reason="still writable", expect_active=1)
    assert fresh.active.version == 2 and [v.name for v in fresh.versions()] == ["v1", "v2"]
