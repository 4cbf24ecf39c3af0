"""Guarded deployment end to end, in process, with outcomes from other processes: a worse
candidate on probation is rolled back with the evidence in the history; a reopened guard (in a
new process) resumes with every logged prediction and outcome; shadow, canary, auto-promote;
bad input gets clear errors; the same on S3 (moto's real server on loopback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import woodlot
from tests.guard._guardutil import fit_pair, store_with_pair, traffic

ROOT = Path(__file__).resolve().parents[2]


def _in_another_process(code: str, *args: str) -> dict:
    """Runs ``code`` in a fresh interpreter (``sys.argv[1:]`` = args); its last stdout line is
    JSON."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


LABELLER = """
import json, sys
import numpy as np
import woodlot
location, options, ids, y = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
store = woodlot.VersionStore(location, storage_options=options or None)
print(json.dumps(store.record_outcomes(ids, np.asarray(y))))
"""

REOPENER = """
import json, sys
import woodlot
location, options, guard = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
store = woodlot.VersionStore(location, storage_options=options or None)
st = store.guard(guard_id=guard).status()
print(json.dumps({"logged": st.predictions_logged, "recorded": st.outcomes_recorded,
                  "joined": st.outcomes, "decision": st.decision, "active": st.active,
                  "estimate": st.estimate}))
"""


def _probation_rolls_back(location, wine, options=None, rounds=12, batch=40):
    X_train, X_test, y_train, y_test = wine
    store = store_with_pair(location, X_train, y_train, storage_options=options)
    guard = store.guard("v2", mode="probation", metric="log_loss", alpha=0.05, max_rows=25)
    assert store.active.name == "v2", "probation promotes the candidate"
    decided = None
    for r in range(rounds):
        Xs, ys = traffic(X_test, y_test, batch, seed=100 + r)
        pred, ids = guard.predict(Xs)
        assert len(pred) == len(ids) == batch
        guard.flush()
        rep = _in_another_process(
            LABELLER, str(location), json.dumps(options or {}), json.dumps(ids), json.dumps(ys.tolist())
        )
        assert (rep["recorded"], rep["unknown"], rep["duplicate"]) == (batch, 0, 0)
        st = guard.check()
        if st.decision is not None:
            decided = st
            break
    assert decided is not None, "a model fitted on shuffled labels is caught"
    assert decided.decision == "rolled_back"
    assert decided.e_value >= 1 / 0.05
    assert decided.interval[0] > 0, "the lower bound excludes 'not worse'"
    assert store.active.name == "v1"
    kinds = [e.kind for e in store.history()]
    assert kinds[-3:] == ["guard_started", "rollback", "guard_decided"] or kinds[-2:] == [
        "rollback",
        "guard_decided",
    ]
    rec = store.guards()[-1]
    assert rec["decision"]["decision"] == "rolled_back"
    ev = rec["decision"]["evidence"]
    assert ev["outcomes"] >= 1 and ev["e_value"] >= 20 and "lower" in ev and "upper" in ev
    return store, guard, decided


def test_a_worse_candidate_on_probation_is_rolled_back_on_outcomes_from_another_process(tmp_path, wine):
    store, guard, decided = _probation_rolls_back(tmp_path / "s", wine)
    rollback = [e for e in store.history() if e.kind == "rollback"][-1]
    assert f"guard {guard.id}" in rollback.reason
    # After the decision the guard answers with v1 and stops logging.
    _, X_test, _, _ = wine
    proba, ids, served = guard.served_by(X_test[:5])
    assert served == ["v1"] * 5
    np.testing.assert_array_equal(proba, store.load("v1").predict_proba(X_test[:5]))


def test_a_new_process_reopening_the_guard_resumes_with_everything_kept(tmp_path, wine):
    X_train, X_test, y_train, y_test = wine
    store = store_with_pair(tmp_path / "s", X_train, y_train)
    guard = store.guard("v2", mode="shadow", max_rows=30)
    Xs, ys = traffic(X_test, y_test, 100, seed=3)
    _, ids = guard.predict(Xs)
    guard.close()
    store.record_outcomes(ids[:70], ys[:70])
    seen = _in_another_process(REOPENER, str(tmp_path / "s"), "{}", str(guard.id))
    assert (seen["logged"], seen["recorded"], seen["joined"]) == (100, 70, 70)
    assert seen["decision"] is None and seen["active"] == "v1"
    assert seen["estimate"] == pytest.approx(guard.status().estimate)
    # The segments are bounded: 100 rows at most 30 per segment.
    names = sorted(p.name for p in (tmp_path / "s" / "guard").iterdir())
    assert len([n for n in names if "-p-" in n]) == 4
    # And this process's handle, reopened, sees the same.
    again = store.guard()
    assert again.id == guard.id and again.status().outcomes == 70


def test_unknown_and_duplicate_request_ids_are_counted_not_fatal(tmp_path, wine):
    X_train, X_test, y_train, y_test = wine
    store = store_with_pair(tmp_path / "s", X_train, y_train)
    guard = store.guard("v2", mode="shadow")
    _, ids = guard.predict(X_test[:3], request_ids=["a", "b", "c"])
    assert ids == ["a", "b", "c"]
    guard.flush()
    rep = store.record_outcomes(["a", "a", "zzz", "b"], y_test[:4])
    assert (rep["recorded"], rep["duplicate"], rep["unknown"]) == (3, 1, 1)
    assert rep["unknown_ids"] == ["zzz"] and rep["duplicate_ids"] == ["a"]
    rep = store.record_outcomes(["b", "c"], y_test[:2])
    assert (rep["recorded"], rep["duplicate"]) == (1, 1)
    st = guard.status()
    assert (st.outcomes, st.outcomes_unmatched, st.outcomes_recorded) == (3, 1, 4)


def test_a_better_shadow_candidate_is_confirmed_and_auto_promoted(tmp_path, wine):
    X_train, X_test, y_train, y_test = wine
    good, bad = fit_pair(X_train, y_train)
    store = woodlot.VersionStore(tmp_path / "s")
    store.save(bad)
    store.promote(1)
    store.save(good)
    guard = store.guard("v2", mode="shadow", metric="accuracy", min_outcomes=50, auto_promote=True)
    st = None
    for r in range(20):
        Xs, ys = traffic(X_test, y_test, 50, seed=200 + r)
        _, ids, served = guard.served_by(Xs)
        assert set(served) == {"v1"}, "shadow: the active version answers"
        guard.flush()
        store.record_outcomes(ids, ys)
        st = guard.check()
        if st.decision:
            break
    assert st is not None and st.decision == "promoted"
    assert st.interval[1] < 0 and st.outcomes >= 50
    assert store.active.name == "v2"
    assert [e.kind for e in store.history()][-2:] == ["promote", "guard_decided"]


def test_a_canary_answers_a_fraction_by_request_id(tmp_path, wine):
    X_train, X_test, y_train, y_test = wine
    store = store_with_pair(tmp_path / "s", X_train, y_train)
    guard = store.guard("v2", mode="canary", canary_fraction=0.25)
    Xs, _ = traffic(X_test, y_test, 400, seed=9)
    ids = [f"req-{i}" for i in range(400)]
    _, _, served = guard.served_by(Xs, request_ids=ids)
    share = served.count("v2") / 400
    assert 0.15 < share < 0.35
    # The same id is answered by the same version (a retried request meets the same model).
    _, _, again = guard.served_by(Xs, request_ids=ids)
    assert again == served


def test_bad_input_gets_clear_errors(tmp_path, wine):
    X_train, X_test, y_train, y_test = wine
    store = store_with_pair(tmp_path / "s", X_train, y_train)
    with pytest.raises(ValueError, match="mode"):
        store.guard("v2", mode="bogus")
    with pytest.raises(ValueError, match="alpha"):
        store.guard("v2", alpha=1.5)
    with pytest.raises(ValueError, match="metric"):
        store.guard("v2", metric="auc")
    with pytest.raises(ValueError, match="candidate"):
        store.guard("v1")
    with pytest.raises(woodlot.VersionNotFoundError):
        store.guard("v9")
    with pytest.raises(woodlot.StoreError, match="no guard is running"):
        store.record_outcomes(["x"], [1])
    guard = store.guard("v2", mode="shadow")
    with pytest.raises(woodlot.StoreError, match="still running"):
        store.guard("v2", mode="shadow")
    with pytest.raises(ValueError, match="features"):
        guard.predict(X_test[:, :5])
    with pytest.raises(ValueError, match="request ids"):
        guard.predict(X_test[:3], request_ids=["a"])
    with pytest.raises(ValueError, match="request id"):
        guard.predict(X_test[:1], request_ids=[""])
    with pytest.raises(ValueError, match="labels"):
        store.record_outcomes(["a", "b"], [1])
    st = guard.stop("testing")
    assert st.decision == "stopped" and store.active.name == "v1"


def test_drift_flags_the_shifted_feature_only(tmp_path):
    store = woodlot.VersionStore(tmp_path / "s")
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(5000, 4))
    live = rng.normal(size=(2000, 4))
    live[:, 2] += 0.5
    rep = store.drift(live, reference=reference)
    assert rep.flagged == [2]
    assert rep.psi[2] > 0.2 and all(rep.psi[j] < 0.05 for j in (0, 1, 3))
    assert rep.rows == 2000
    with pytest.raises(ValueError, match="features"):
        store.drift(live[:, :3], reference=reference)


def test_probation_on_s3_rolls_back_and_resumes(moto_endpoint, wine, no_aws_environment):
    from tests._moto import bucket, keys, options

    b = bucket(moto_endpoint)
    opts = options(moto_endpoint, allow_http="true", region="us-east-1")
    store, guard, decided = _probation_rolls_back(f"s3://{b}/models", wine, options=opts)
    objects = keys(moto_endpoint, b)
    segments = [k for k in objects if "/guard/" in k and "-p-" in k]
    assert segments, objects
    assert any(k.endswith("-d-0000000001.json") for k in objects), "the decision claim"
    seen = _in_another_process(REOPENER, f"s3://{b}/models", json.dumps(opts), str(guard.id))
    assert seen["decision"] == "rolled_back" and seen["active"] == "v1"
    assert seen["joined"] == decided.outcomes_recorded
