"""A live model on an S3 store whose endpoint goes away mid-run: serving continues, the
staleness grows and is reported (status and the `woodlot` logger), and the live model
recovers and follows the next promotion once the endpoint is back.

The endpoint is a real ``python -m moto.server`` on a loopback port picked for this test; it
is stopped and started again on the same port. moto keeps objects in memory, so before the
restart the test copies every object of the bucket out with boto3, and puts them back after:
the store that returns is the same store."""

import logging
import os
import time

import numpy as np
import pytest

pytest.importorskip("moto")
boto3 = pytest.importorskip("boto3")

import woodlot  # noqa: E402
from tests._moto import s3_client  # noqa: E402
from tests.serving._live_util import fast_failing_s3_options, proba_by_version, small_models, wait_for  # noqa: E402

BUCKET = "live-bucket"


pytestmark = pytest.mark.usefixtures("no_aws_environment")


def _options(endpoint):
    return fast_failing_s3_options(endpoint)


def test_serving_survives_the_endpoint_going_away_and_recovers(moto, caplog):
    caplog.set_level(logging.INFO, logger="woodlot")
    s3 = s3_client(moto.endpoint)
    s3.create_bucket(Bucket=BUCKET)
    models, X_test = small_models(2)
    url = f"s3://{BUCKET}/models"
    store = woodlot.VersionStore(url, storage_options=_options(moto.endpoint))
    v1, v2 = store.save(models[0]), store.save(models[1])
    store.promote(v1)
    rows = X_test[:5]
    expected = proba_by_version(store, rows)

    live = woodlot.LiveModel(store, poll_seconds=0.1)
    assert live.version == v1
    saved = {
        o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
        for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    }

    moto.stop()
    outage = time.monotonic()
    while time.monotonic() - outage < 2.0:
        proba, version = live.predict_proba(rows, return_version=True)
        assert version == "v1" and np.array_equal(proba, expected["v1"])
        time.sleep(0.005)
    st = live.status()
    assert st.version == "v1"
    assert st.failed_checks >= 3, st
    assert st.staleness_seconds >= 1.5, st
    assert st.last_error and "could not check" in st.last_error
    failed = [r for r in caplog.records if r.name == "woodlot" and r.levelno == logging.WARNING]
    assert len(failed) >= 1 and "could not check" in failed[0].getMessage()
    with pytest.raises(OSError):
        live.refresh()  # an explicit check says why it failed

    moto.start()
    s3 = s3_client(moto.endpoint)
    s3.create_bucket(Bucket=BUCKET)
    for key, body in saved.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    woodlot.VersionStore(url, storage_options=_options(moto.endpoint)).promote(v2)
    assert wait_for(lambda: live.predict_proba(rows, return_version=True)[1] == "v2", 15)
    proba, version = live.predict_proba(rows, return_version=True)
    assert version == "v2" and np.array_equal(proba, expected["v2"])
    st = live.status()
    assert st.staleness_seconds < 1.0 and st.swaps == 1 and st.refused_swaps == 0
    assert any("answers again" in r.getMessage() for r in caplog.records if r.name == "woodlot")
    live.close()
