"""Over HTTP, on an S3 store (a real moto server on loopback) whose endpoint is stopped mid-run:
the server keeps answering with the last good version, /metrics' staleness grows, and once the
endpoint is back (with the same objects) it recovers and follows the next promotion."""

from __future__ import annotations

import json
import os
import time

import pytest

pytest.importorskip("moto")
pytest.importorskip("boto3")

import woodlot  # noqa: E402
from tests._moto import s3_client  # noqa: E402
from tests.serving._http_util import Client, metrics  # noqa: E402
from tests.serving._live_util import fast_failing_s3_options, small_models, wait_for  # noqa: E402

BUCKET = "http-bucket"


pytestmark = pytest.mark.usefixtures("no_aws_environment")


def _options(endpoint):
    return fast_failing_s3_options(endpoint)


def test_serving_continues_while_s3_is_down_and_staleness_shows_it(moto):
    s3 = s3_client(moto.endpoint)
    s3.create_bucket(Bucket=BUCKET)
    models, X_test = small_models(2)
    url = f"s3://{BUCKET}/models"
    store = woodlot.VersionStore(url, storage_options=_options(moto.endpoint))
    v1, v2 = store.save(models[0]), store.save(models[1])
    store.promote(v1)
    body = {"instances": X_test[:3].tolist()}
    answers = {f"v{i + 1}": {"predictions": m.predict(X_test[:3]).tolist()} for i, m in enumerate(models)}
    saved = {
        o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
        for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    }
    with woodlot.serve(url, storage_options=_options(moto.endpoint), port=0, poll_seconds=0.1, block=False) as server:
        client = Client(server.url)
        assert metrics(client)["woodlot_seconds_since_last_successful_check"] < 1.0
        moto.stop()
        outage = time.monotonic()
        while time.monotonic() - outage < 2.0:
            status, headers, data = client.post_json("/invocations", body)
            assert status == 200 and headers["x-woodlot-version"] == "v1"
            assert json.loads(data) == answers["v1"]
            time.sleep(0.01)
        m = metrics(client)
        assert m["woodlot_seconds_since_last_successful_check"] >= 1.5, m
        assert m["woodlot_failed_checks_total"] >= 3 and m["woodlot_served_version"] == 1
        assert client.get("/ping")[0] == 200  # a stale model is still a verified model

        moto.start()
        s3 = s3_client(moto.endpoint)
        s3.create_bucket(Bucket=BUCKET)
        for key, data in saved.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        woodlot.VersionStore(url, storage_options=_options(moto.endpoint)).promote(v2)
        assert wait_for(lambda: client.post_json("/invocations", body)[1].get("x-woodlot-version") == "v2", 15)
        status, _, data = client.post_json("/invocations", body)
        assert status == 200 and json.loads(data) == answers["v2"]
        m = metrics(client)
        assert m["woodlot_seconds_since_last_successful_check"] < 1.0 and m["woodlot_swaps_total"] == 1
