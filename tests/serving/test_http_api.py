"""``woodlot.serve`` over real HTTP on 127.0.0.1:0: MLflow's input formats and answers, the
error shape for every bad input the issue lists, 503 before a model exists, headers, the
Python API's checks. Every server is stopped by its test."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

import woodlot
from tests.serving._http_util import Client, metrics, raw
from tests.serving._live_util import small_models


@pytest.fixture(scope="module")
def named_model():
    data = load_wine(as_frame=True)
    X = data.data.rename(columns=lambda c: c.replace("/", "_"))
    clf = woodlot.RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X, data.target)
    return clf, X


@pytest.fixture()
def served(tmp_path, named_model):
    clf, X = named_model
    store = woodlot.VersionStore(tmp_path / "models")
    store.promote(store.save(clf))
    with woodlot.serve(store, port=0, block=False, max_body_bytes=200_000) as server:
        yield server, Client(server.url), clf, X


def _error(status_body):
    status, _, body = status_body
    doc = json.loads(body)
    assert set(doc) == {"error_code", "message"}, doc
    return status, doc["error_code"], doc["message"]


def test_every_mlflow_format_and_csv_give_the_estimators_answers(served):
    server, client, clf, X = served
    rows = X.iloc[:4]
    labels = clf.predict(rows).tolist()
    proba = clf.predict_proba(rows)
    cols = list(X.columns)
    bodies = [
        {"dataframe_split": json.loads(rows.to_json(orient="split"))},
        {"dataframe_records": json.loads(rows.to_json(orient="records"))},
        {"instances": rows.to_numpy().tolist()},
        {"inputs": {c: rows[c].tolist() for c in cols}},
    ]
    for doc in bodies:
        status, headers, body = client.post_json("/invocations", doc)
        assert status == 200, body
        assert json.loads(body) == {"predictions": labels}
        assert headers["x-woodlot-version"] == "v1" and headers["x-request-id"]
        assert headers["content-type"] == "application/json"
    status, _, body = client.post_json("/invocations?output=proba", bodies[0])
    assert status == 200 and np.allclose(json.loads(body)["predictions"], proba, rtol=0, atol=1e-12)
    status, _, body = client.post_json("/invocations", {**bodies[2], "params": {"predict_proba": True}})
    assert status == 200 and np.allclose(json.loads(body)["predictions"], proba, rtol=0, atol=1e-12)
    csv = rows.to_csv(index=False).encode()
    status, _, body = client.request("POST", "/invocations", csv, {"Content-Type": "text/csv"})
    assert status == 200 and json.loads(body) == {"predictions": labels}, body
    status, _, body = client.request("POST", "/invocations?output=proba", csv, {"Content-Type": "text/csv"})
    assert status == 200 and np.allclose(json.loads(body)["predictions"], proba, rtol=0, atol=1e-12)
    # The client's request id comes back; the server makes one up otherwise.
    status, headers, _ = client.request("GET", "/ping", headers={"X-Request-Id": "order-17"})
    assert status == 200 and headers["x-request-id"] == "order-17"


def test_every_bad_input_gets_a_400_that_names_the_problem(served):
    server, client, clf, X = served
    cols = list(X.columns)
    row = X.iloc[0].tolist()
    json_ct = {"Content-Type": "application/json"}
    cases = [
        (b"", json_ct, "empty"),
        (b"{\"instances\": [[1, 2]", json_ct, "not valid JSON"),
        (b"\xff\xfe\x00", json_ct, "not valid JSON"),
        (json.dumps({"instances": [row[:-1]]}).encode(), json_ct, f"has {len(cols) - 1} values"),
        (json.dumps({"dataframe_split": {"columns": cols[::-1], "data": [row]}}).encode(), json_ct, "same order"),
        (json.dumps({"dataframe_records": [dict(zip(cols[:-1] + ["nope"], row))]}).encode(), json_ct, "unknown column"),
        (json.dumps({"instances": [row[:-1] + ["x"]]}).encode(), json_ct, "expected a number"),
        (b"{\"instances\": [[" + b"1e999," * (len(cols) - 1) + b"1]]}", json_ct, "not valid JSON"),
        (b"{\"instances\": [[" + b"Infinity," * (len(cols) - 1) + b"1]]}", json_ct, "not valid JSON"),
        (",".join(cols).encode() + b"\n" + b"1," * (len(cols) - 1) + b"inf\n", {"Content-Type": "text/csv"}, "not a finite number"),
        (",".join(cols).encode() + b"\n" + b"1,2\n", {"Content-Type": "text/csv"}, "has 2 values"),
        (b"a,b\n1,2\n", {"Content-Type": "text/csv"}, "same order"),
        (b"\"unclosed\n", {"Content-Type": "text/csv"}, ""),
        (json.dumps({"instances": [row], "params": {"predict_proba": "yes"}}).encode(), json_ct, "true or false"),
    ]
    for body, headers, want in cases:
        status, code, message = _error(client.request("POST", "/invocations", body, headers))
        assert (status, code) == (400, "BAD_REQUEST"), (body[:60], message)
        assert want in message, (body[:60], message)
    status, code, message = _error(client.request("POST", "/invocations", b"<x/>", {"Content-Type": "application/xml"}))
    assert (status, code) == (415, "UNSUPPORTED_MEDIA_TYPE") and "text/csv" in message
    big = json.dumps({"instances": [row] * 3000}).encode()
    assert len(big) > 200_000
    status, code, message = _error(client.request("POST", "/invocations", big, json_ct))
    assert (status, code) == (413, "REQUEST_LIMIT_EXCEEDED") and "200000 bytes" in message
    # Chunked, without a Content-Length: refused once it passes the limit.
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (big[i : i + 50_000] for i in range(0, len(big), 50_000)))
    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert raw(server.url, head + chunked + b"0\r\n\r\n") == 413
    assert _error(client.get("/nope"))[:2] == (404, "ENDPOINT_NOT_FOUND")
    assert _error(client.get("/invocations"))[:2] == (405, "METHOD_NOT_ALLOWED")
    m = metrics(client)
    assert m['woodlot_requests_total{code="400"}'] == len(cases)
    assert m['woodlot_requests_total{code="413"}'] == 2 and m['woodlot_requests_total{code="415"}'] == 1
    assert m["woodlot_served_version"] == 1
    # After all of it, it still answers.
    status, _, _ = client.post_json("/invocations", {"instances": [row]})
    assert status == 200


def test_503_until_a_version_is_promoted_then_it_follows(tmp_path):
    store = woodlot.VersionStore(tmp_path / "models")
    (model,), X_test = small_models(1)
    with woodlot.serve(store, port=0, poll_seconds=0.05, block=False) as server:
        client = Client(server.url)
        assert server.status().version is None
        assert _error(client.get("/ping"))[:2] == (503, "TEMPORARILY_UNAVAILABLE")
        status, code, message = _error(client.post_json("/invocations", {"instances": X_test[:1].tolist()}))
        assert (status, code) == (503, "TEMPORARILY_UNAVAILABLE") and "promote" in message
        v1 = store.save(model)
        store.promote(v1)
        deadline = time.monotonic() + 30  # a poll every 0.05 s; a busy machine may be slower
        while time.monotonic() < deadline:
            status, headers, _ = client.get("/ping")
            if status == 200:
                break
            time.sleep(0.01)
        assert status == 200 and headers["x-woodlot-version"] == "v1"
        status, _, body = client.get("/version")
        assert status == 200 and json.loads(body)["version"] == 1
        status, _, body = client.post_json("/invocations", {"instances": X_test[:3].tolist()})
        assert json.loads(body) == {"predictions": model.predict(X_test[:3]).tolist()}
        assert server.running and server.url == f"http://127.0.0.1:{server.port}" and server.port > 0
    assert not server.running
    with pytest.raises(OSError):
        Client(server.url, timeout=2).get("/ping")


def test_the_api_refuses_bad_arguments_with_clear_errors(tmp_path):
    store = woodlot.VersionStore(tmp_path / "models")
    with pytest.raises(FileNotFoundError, match="no store"):
        woodlot.serve(tmp_path / "missing", port=0, block=False)
    for kwargs, error, match in [
        ({"port": 70000}, ValueError, "port"),
        ({"port": "80"}, TypeError, "port"),
        ({"workers": 0}, ValueError, "workers"),
        ({"poll_seconds": float("nan")}, ValueError, "poll_seconds"),
        ({"max_body_bytes": True}, TypeError, "max_body_bytes"),
        ({"body_timeout": 0}, ValueError, "body_timeout"),
        ({"host": "no-such-host.invalid"}, ValueError, "does not resolve"),
    ]:
        with pytest.raises(error, match=match):
            woodlot.serve(store, block=False, **{"port": 0, **kwargs})
    with woodlot.serve(store, port=0, block=False) as server:
        with pytest.raises(OSError, match="binding"):
            woodlot.serve(store, port=server.port, block=False)
        server.stop()
        server.stop()  # idempotent
