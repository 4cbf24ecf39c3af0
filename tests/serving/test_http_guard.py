"""The HTTP server scoring through a guard, end to end with real servers on loopback.

- probation of a deliberately worse v2 (fitted on shuffled labels) under continuous traffic,
  with the true labels posted to ``/feedback`` by another process: the server rolls back to
  v1 by itself, the history holds the evidence, no request fails, ``/guard`` and ``/metrics``
  show the decision;
- a server stopped with SIGTERM and started again resumes the same guard with every logged
  prediction and outcome kept; after a SIGKILL it resumes and loses at most the unflushed
  window (whose outcomes then count as unknown);
- a guard started from Python while a server runs is picked up within the poll interval;
- ``/feedback``: bad bodies 400 JSON, no guard 404 JSON, and a bounded fuzz.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import woodlot
from tests.serving._http_util import Client, metrics, raw

WOODLOT = [sys.executable, "-c", "from woodlot._cli import console_main; console_main()"]
POLL = "0.2"


def _data(n=1200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


def _store(path, worse: bool):
    """v1 active (a good forest); v2 a forest on shuffled labels (``worse``) or another good one."""
    X, y = _data()
    store = woodlot.VersionStore(path)
    good = woodlot.RandomForestClassifier(n_estimators=10, max_depth=6, random_state=1).fit(X, y)
    store.promote(store.save(good))
    labels = np.random.default_rng(7).permutation(y) if worse else y
    other = woodlot.RandomForestClassifier(n_estimators=10, max_depth=6, random_state=2).fit(X, labels)
    store.save(other)
    return store, X, y


def _start(path, *extra):
    proc = subprocess.Popen(
        [*WOODLOT, "serve", "--store", str(path), "--port", "0", "--poll-seconds", POLL, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert "listening on http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc, line.split("listening on ", 1)[1].split(",", 1)[0]


def _stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def _score(client, X, i, request_id):
    return client.request(
        "POST",
        "/invocations",
        json.dumps({"instances": [X[i].tolist()]}).encode(),
        {"Content-Type": "application/json", "x-request-id": request_id},
    )


def _wait(what, predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _guard_json(client):
    status, _, body = client.get("/guard")
    assert status == 200, body
    return json.loads(body)


#: The labeller: another process that reads the ids the clients got (one JSON line each, in
#: a file) and posts their true labels to /feedback in batches until told to stop.
LABELLER = r"""
import json, sys, time, http.client, os
from urllib.parse import urlsplit
url, path, stop = sys.argv[1], sys.argv[2], sys.argv[3]
u = urlsplit(url)
done, posted = 0, 0
while True:
    finished = os.path.exists(stop)
    with open(path) as f:
        lines = f.read().splitlines()
    batch = [json.loads(l) for l in lines[done:] if l.strip()]
    if batch:
        body = json.dumps({"request_ids": [b["id"] for b in batch], "y_true": [b["y"] for b in batch]})
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request("POST", "/feedback", body, {"Content-Type": "application/json"})
        r = c.getresponse(); r.read(); c.close()
        if r.status == 404:
            break  # the guard is decided: nothing takes outcomes any more
        assert r.status == 200, r.status
        done += len(batch); posted += len(batch)
    if finished:
        break
    time.sleep(0.1)
print(posted)
"""


def test_a_worse_candidate_on_probation_is_rolled_back_by_the_server_without_a_failed_request(tmp_path):
    path = tmp_path / "models"
    store, X, y = _store(path, worse=True)
    proc, url = _start(path, "--guard", "v2", "--guard-min-outcomes", "30")
    ids_file, stop_file = tmp_path / "ids.jsonl", tmp_path / "stop"
    ids_file.write_text("")
    labeller = subprocess.Popen(
        [sys.executable, "-c", LABELLER, url, str(ids_file), str(stop_file)], stdout=subprocess.PIPE, text=True
    )
    failures, versions, lock, stopping = [], [], threading.Lock(), threading.Event()

    def client_loop(k):
        c, rng = Client(url), random.Random(k)
        n = 0
        while not stopping.is_set() and n < 3000:
            i = rng.randrange(len(X))
            status, headers, body = _score(c, X, i, f"c{k}-{n}")
            n += 1
            if status != 200:
                failures.append((status, body))
                continue
            doc = json.loads(body)
            with lock:
                versions.append(headers["x-woodlot-version"])
                if "request_ids" in doc:
                    with open(ids_file, "a") as f:
                        f.write(json.dumps({"id": doc["request_ids"][0], "y": int(y[i])}) + "\n")
            time.sleep(0.005)

    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(2)]
    try:
        for t in threads:
            t.start()
        c = Client(url)
        decided = _wait("the server's rollback", lambda: (g := _guard_json(c))["decision"] and g, timeout=60)
        assert decided["decision"]["decision"] == "rolled_back", decided
        # The live model follows the store back to v1 while the clients keep going.
        _wait("v1 answering", lambda: versions[-20:] == ["v1"] * 20 and len(versions) >= 20, timeout=30)
    finally:
        stopping.set()
        for t in threads:
            t.join(timeout=30)
        stop_file.write_text("")
        labeller.wait(timeout=30)
    assert failures == [], failures[:5]
    assert "v2" in versions and versions[-1] == "v1"
    ev = decided["evidence"]
    assert ev["verdict"] == "worse" and ev["e_value"] >= ev["threshold"] and ev["outcomes"] >= 1
    assert ev["lower"] > 0, ev
    m = metrics(Client(url))
    assert m['woodlot_guard_decision{decision="rolled_back"}'] == 1
    assert m["woodlot_guard_running"] == 0
    assert m["woodlot_guard_outcomes_joined"] >= ev["outcomes"]
    assert m["woodlot_guard_e_value"] >= ev["threshold"]
    assert _stop(proc) == 0
    # The history holds the evidence: the guard's start, the rollback, the decision.
    history = woodlot.VersionStore(path).history()
    kinds = [e.kind for e in history]
    assert kinds.count("guard_started") == 1 and "guard_decided" in kinds and "rollback" in kinds, kinds
    decided_event = [e for e in history if e.kind == "guard_decided"][-1]
    details = decided_event.details
    assert details["decision"] == "rolled_back"
    assert details["evidence"]["e_value"] >= details["evidence"]["threshold"]
    assert details["evidence"]["outcomes"] == ev["outcomes"]
    assert woodlot.VersionStore(path).active.name == "v1"
    # Restarted with the same command line: the decided guard is not started again.
    proc, url = _start(path, "--guard", "v2", "--guard-min-outcomes", "30")
    try:
        assert "already decided (rolled_back)" in proc.stdout.readline()
        status, headers, _ = _score(Client(url), X, 0, "again")
        assert status == 200 and headers["x-woodlot-version"] == "v1" and "x-woodlot-guard" not in headers
    finally:
        assert _stop(proc) == 0
    assert [e.kind for e in woodlot.VersionStore(path).history()].count("guard_started") == 1


def _counts(path):
    g = woodlot.VersionStore(path).guards()[-1]
    from woodlot._guard import open_guard

    with open_guard(woodlot.VersionStore(path), g["spec"]["guard"]) as h:
        st = h.status()
    return st.guard, st.running, st.predictions_logged, st.outcomes_recorded


def _traffic(url, X, y, prefix, n, feedback=True):
    c = Client(url)
    ids, labels = [], []
    for k in range(n):
        i = k % len(X)
        status, headers, body = _score(c, X, i, f"{prefix}-{k}")
        assert status == 200, body
        ids += json.loads(body)["request_ids"]
        labels.append(int(y[i]))
    if feedback:
        status, _, body = c.post_json("/feedback", {"request_ids": ids, "y_true": labels})
        assert status == 200, body
    return ids, labels


def test_a_restarted_server_resumes_the_guard_with_nothing_lost_and_a_killed_one_loses_only_the_window(tmp_path):
    path = tmp_path / "models"
    store, X, y = _store(path, worse=False)
    # No decision can come in this test: a shadow guard that needs many outcomes.
    guard_args = ("--guard", "v2", "--guard-mode", "shadow", "--guard-min-outcomes", "100000")
    # A poll interval long enough that no check flushes: only the graceful stop writes the
    # last 20 rows out.
    proc, url = _start(path, *guard_args, "--poll-seconds", "60")
    _traffic(url, X, y, "a", 60)
    before = _guard_json(Client(url))
    _traffic(url, X, y, "a2", 20, feedback=False)
    assert _stop(proc) == 0  # SIGTERM: drained and flushed
    gid, running, logged, outcomes = _counts(path)
    assert (running, logged, outcomes) == (True, 80, 60)
    assert gid == before["spec"]["guard"]

    proc, url = _start(path, *guard_args)
    try:
        after = _guard_json(Client(url))
        assert after["spec"]["guard"] == gid and after["running"]
        assert (after["predictions_logged"], after["outcomes_recorded"]) == (80, 60)
        _traffic(url, X, y, "b", 40, feedback=False)
        # Two poll intervals and more: a check has flushed those rows.
        _wait("b rows flushed", lambda: _guard_json(Client(url))["predictions_logged"] == 120, timeout=10)
        late, late_y = _traffic(url, X, y, "c", 30, feedback=False)
    finally:
        _stop(proc, signal.SIGKILL)
    gid2, running, logged, _ = _counts(path)
    assert gid2 == gid and running
    # Everything flushed before the kill is there; at most the last window's rows are lost.
    assert 120 <= logged <= 150, logged
    proc, url = _start(path, *guard_args)
    try:
        c = Client(url)
        assert _guard_json(c)["spec"]["guard"] == gid
        status, _, body = c.post_json("/feedback", {"request_ids": late, "y_true": late_y})
        assert status == 200, body
        report = json.loads(body)
        assert report["recorded"] == 30 and report["unknown"] == 150 - logged, (report, logged)
    finally:
        assert _stop(proc) == 0


def test_a_guard_started_from_python_is_picked_up_within_the_poll_interval(tmp_path):
    store, X, y = _store(tmp_path / "models", worse=False)
    with woodlot.serve(store, port=0, poll_seconds=0.1, block=False) as server:
        c = Client(server.url)
        status, headers, body = _score(c, X, 0, "before")
        assert status == 200 and "request_ids" not in json.loads(body)
        assert server.status().guard is None
        g = store.guard("v2", mode="shadow", min_outcomes=1000)

        def guarded():
            s, h, b = _score(c, X, 1, uuid.uuid4().hex)
            return "request_ids" in json.loads(b) and h

        headers = _wait("the guard to be picked up", guarded, timeout=10)
        assert headers["x-woodlot-version"] == "v1"  # shadow: the active version answers
        assert headers["x-woodlot-guard"] == str(g.id)
        st = server.status().guard
        assert st is not None and st.guard == g.id and st.mode == "shadow" and st.running
        _wait("rows logged", lambda: server.guard_status().predictions_logged >= 1, timeout=10)
        g.stop("done")
        _wait("the guard detached", lambda: "request_ids" not in json.loads(_score(c, X, 2, "after")[2]), timeout=10)
        assert server.guard_status().decision == "stopped"


def test_feedback_bad_bodies_are_400_json_no_guard_is_404_and_fuzzed_bodies_get_only_known_answers(tmp_path):
    store, X, y = _store(tmp_path / "models", worse=False)
    with woodlot.serve(store, port=0, poll_seconds=0.1, block=False, max_body_bytes=2 << 20) as server:
        c = Client(server.url)
        status, _, body = c.post_json("/feedback", {"request_ids": ["a"], "y_true": [1]})
        assert status == 404 and json.loads(body)["message"].startswith("no guard is running"), body
        status, _, body = c.get("/guard")
        assert status == 404 and "error_code" in json.loads(body)
        g = store.guard("v2", mode="shadow", min_outcomes=1000)
        _wait("the guard", lambda: "request_ids" in json.loads(_score(c, X, 0, "r0")[2]), timeout=10)
        for doc, says in [
            ({"request_ids": ["r0"], "y_true": [1, 0]}, "1 request_ids but 2"),
            ({"request_ids": "r0", "y_true": [1]}, "must be a list"),
            ({"request_ids": ["r0"], "y_true": [{"a": 1}]}, "numbers or strings"),
            ({"request_ids": ["r0"], "y_true": [9]}, "not one of the model's classes"),
            ({"request_ids": ["r0"] * 100_001, "y_true": [1] * 100_001}, "too many"),
            ([1, 2], "JSON object"),
        ]:
            status, _, body = c.post_json("/feedback", doc)
            assert status == 400, (str(doc)[:80], body)
            assert says in json.loads(body)["message"], body
        status, _, body = c.post_json("/feedback", {"request_ids": ["r0", "r0", "zz"], "y_true": [1, 1, 0]})
        assert status == 200
        assert {k: json.loads(body)[k] for k in ("recorded", "unknown", "duplicate")} == {
            "recorded": 2,
            "unknown": 1,
            "duplicate": 1,
        }
        # Over the body limit: refused from the declared length, before reading.
        head = b"POST /feedback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n\r\n"
        assert raw(server.url, head) == 413
        # A bounded fuzz: mutated valid bodies and random bytes.
        rng = random.Random(5)
        seed = json.dumps({"request_ids": ["r0", "x/1"], "y_true": [0, 1]}).encode()
        deadline, seen = time.monotonic() + 3.0, set()
        while time.monotonic() < deadline:
            b = bytearray(seed)
            for _ in range(rng.randint(1, 6)):
                i = rng.randrange(len(b) + 1)
                b[i:i] = rng.choice([b"[", b"]", b"{", b"}", b",", b'"', b"null", b"1e999", b"\x00", b"true", b'"y_true"'])
                if rng.random() < 0.3 and b:
                    del b[rng.randrange(len(b))]
            body = bytes(b) if rng.random() < 0.9 else os.urandom(rng.randint(0, 200))
            status, _, answer = c.request("POST", "/feedback", body, {"Content-Type": "application/json"})
            assert status in (200, 400, 404, 413), (status, body, answer)
            json.loads(answer)
            seen.add(status)
        assert 400 in seen
        assert c.get("/ping")[0] == 200
        g.stop()


def _cli(capsys, *args):
    """Runs the command line in this process: (exit code, stdout, stderr)."""
    from woodlot._cli import main

    try:
        code = main(list(args))
    except SystemExit as e:  # argparse's usage errors
        code = int(e.code)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_serve_guard_arguments_are_validated_and_guard_status_prints_json(tmp_path, capsys):
    path = tmp_path / "models"
    _store(path, worse=False)
    for extra in [
        ["--guard-mode", "shadow"],
        ["--guard", "v2", "--auto-promote"],
        ["--guard", "v2", "--ref", "latest"],
        ["--guard", "v2", "--guard-mode", "shadow", "--canary-fraction", "0.2"],
        ["--guard", "v2", "--guard-mode", "canary", "--canary-fraction", "0"],
        ["--guard", "v2", "--guard-alpha", "2"],
        ["--guard", "v2", "--guard-mode", "bold"],
    ]:
        code, out, err = _cli(capsys, "serve", "--store", str(path), "--port", "0", *extra)
        assert code == 2, (extra, out, err)
        assert len(err.strip().splitlines()) == 1, (extra, err)
        assert "listening" not in out
    assert woodlot.VersionStore(path).guards() == [], "nothing was started"
    code, _, err = _cli(capsys, "guard", "status", "--store", str(path))
    assert code == 3 and "no guard" in err
    assert _cli(capsys, "guard", "stop", "--store", str(path))[0] == 6
    woodlot.VersionStore(path).guard("v2", mode="shadow", min_outcomes=1000).close()
    code, out, err = _cli(capsys, "guard", "status", "--json", "--store", str(path))
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["mode"], doc["candidate"], doc["baseline"], doc["running"], doc["decision"]) == ("shadow", "v2", "v1", True, None)
    assert len(doc["interval"]) == 2 and "e_value" in doc and doc["outcomes"] == 0
    code, out, err = _cli(capsys, "guard", "stop", "--reason", "test", "--json", "--store", str(path))
    assert code == 0, err
    assert json.loads(out)["decision"] == "stopped"
    code, out, _ = _cli(capsys, "guard", "status", "--store", str(path))
    assert code == 0 and "stopped" in out, out
    r = subprocess.run([*WOODLOT, "guard", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "examples:" in r.stdout


def test_two_servers_on_one_store_decide_once(tmp_path):
    store, X, y = _store(tmp_path / "models", worse=True)
    g = store.guard("v2", mode="probation", min_outcomes=30)
    g.close()
    with woodlot.serve(store, port=0, poll_seconds=0.1, block=False) as a, woodlot.serve(
        store, port=0, poll_seconds=0.1, block=False
    ) as b:
        clients = [Client(a.url), Client(b.url)]
        failures, k = [], 0

        def decided():
            return all(s.guard_status() is not None and not s.guard_status().running for s in (a, b))

        deadline = time.monotonic() + 60
        while not decided() and time.monotonic() < deadline:
            ids, labels = [], []
            for _ in range(10):
                i = k % len(X)
                status, _, body = _score(clients[k % 2], X, i, f"r{k}")
                k += 1
                if status != 200:
                    failures.append(body)
                    continue
                ids += json.loads(body).get("request_ids", [])
                labels += [int(y[i])] * len(json.loads(body).get("request_ids", []))
            # Each server's outcomes posted to the other one: the log is the store's, not a server's.
            for c in clients:
                c.post_json("/feedback", {"request_ids": ids, "y_true": labels})
        assert decided(), "both servers saw the decision"
        assert failures == []
        _wait("both on v1", lambda: all(c.post_json("/invocations", {"instances": [X[0].tolist()]})[1]["x-woodlot-version"] == "v1" for c in clients))
    kinds = [e.kind for e in store.history()]
    after = kinds[kinds.index("guard_started") :]
    assert after.count("guard_decided") == 1 and after.count("rollback") == 1, after
    assert store.guards()[-1]["decision"]["decision"] == "rolled_back"
