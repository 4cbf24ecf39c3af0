"""The HTTP inputs fuzzed for a bounded time: mutated valid bodies, random bytes, huge and
deeply nested JSON, bad CSV, wrong content types, truncated bodies. Every answer is one of
200/400/413/415/503 (raw garbage that is not HTTP may instead be answered by hyper's 400 or
a closed connection), the server is alive after, and memory stays bounded."""

from __future__ import annotations

import json
import random
import time

import woodlot
from tests.serving._http_util import ALLOWED, Client, metrics, raw, rss_bytes
from tests.serving._live_util import small_models

SECONDS = 4.0
LIMIT = 64 * 1024


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        i = rng.randrange(len(b) + 1)
        if op < 0.3 and b:
            b[min(i, len(b) - 1)] = rng.randrange(256)
        elif op < 0.5:
            b[i:i] = rng.choice([b"[", b"]", b"{", b"}", b",", b":", b'"', b"null", b"1e999", b"-", b"\x00", b"NaN"])
        elif op < 0.7 and b:
            del b[i : i + rng.randint(1, 16)]
        else:
            b[i:i] = bytes(b[i : i + rng.randint(1, 64)]) * rng.randint(1, 4)
    return bytes(b)


def test_fuzzed_requests_get_only_expected_answers_and_the_server_survives(tmp_path):
    (model,), X_test = small_models(1)
    store = woodlot.VersionStore(tmp_path / "models")
    store.promote(store.save(model))
    rng = random.Random(1234)
    rows = X_test[:3].tolist()
    n = len(rows[0])
    seeds = [
        json.dumps({"instances": rows}).encode(),
        json.dumps({"inputs": rows, "params": {"predict_proba": True}}).encode(),
        json.dumps({"dataframe_split": {"columns": [f"c{j}" for j in range(n)], "data": rows}}).encode(),
        (",".join(f"c{j}" for j in range(n)) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n").encode(),
    ]
    specials = [
        b"[" * 50_000 + b"]" * 50_000,
        b'{"instances": ' + b"[" * 5000 + b"1" + b"]" * 5000 + b"}",
        json.dumps({"instances": [rows[0]] * 250}).encode(),  # near the limit
        json.dumps({"instances": [rows[0]] * 2000}).encode(),  # over it
        b"\xef\xbb\xbf" + seeds[0],
        b'{"instances": [[' + b"1," * 20000 + b"1]]}",
        b"\n\n\n",
        b'"' * 1000,
    ]
    counts: dict = {}
    before = rss_bytes()
    with woodlot.serve(store, port=0, block=False, max_body_bytes=LIMIT, body_timeout=2.0) as server:
        client = Client(server.url, timeout=15)
        end = time.monotonic() + SECONDS
        i = 0
        while time.monotonic() < end or i < 200:
            i += 1
            kind = rng.random()
            ct = rng.choice(["application/json", "text/csv", "application/json; charset=utf-8", "text/plain", "", None])
            if kind < 0.55:
                body = _mutate(rng, rng.choice(seeds))
            elif kind < 0.65:
                body = rng.choice(specials)
            elif kind < 0.75:
                body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 2000)))
            elif kind < 0.85:
                # Truncated: the declared length is longer than what is sent before closing.
                body = _mutate(rng, rng.choice(seeds))
                head = f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body) + rng.randint(1, 500)}\r\n"
                if ct:
                    head += f"Content-Type: {ct}\r\n"
                status = raw(server.url, head.encode() + b"\r\n" + body)
                assert status in ALLOWED, (status, body[:80])
                counts[status] = counts.get(status, 0) + 1
                continue
            elif kind < 0.9:
                # Not HTTP at all: hyper answers 400 or closes the connection.
                status = raw(server.url, bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))))
                assert status in (None, 400), status
                counts[("raw", status)] = counts.get(("raw", status), 0) + 1
                continue
            else:
                body = rng.choice(seeds)
            headers = {} if ct is None else {"Content-Type": ct}
            path = rng.choice(["/invocations", "/invocations?output=proba", "/invocations?output=" + "x" * 10])
            status, _, data = client.request("POST", path, body, headers)
            assert status in ALLOWED, (status, body[:80], data[:200])
            if status != 200:
                doc = json.loads(data)
                assert set(doc) == {"error_code", "message"} and doc["message"], doc
            counts[status] = counts.get(status, 0) + 1
        # Alive and still right after all of it.
        status, _, data = client.post_json("/invocations", {"instances": rows})
        assert status == 200 and json.loads(data) == {"predictions": model.predict(X_test[:3]).tolist()}
        assert client.get("/ping")[0] == 200
        m = metrics(client)
    grown = rss_bytes() - before
    print(f"\n{i} fuzzed requests in {SECONDS:.0f}+ s: {counts}; RSS grew {grown / 2**20:.1f} MiB")
    assert counts.get(200, 0) > 0 and counts.get(400, 0) > 0 and counts.get(413, 0) > 0 and counts.get(415, 0) > 0
    assert m['woodlot_requests_total{code="500"}'] == 0
    assert grown < 100 * 2**20, grown
