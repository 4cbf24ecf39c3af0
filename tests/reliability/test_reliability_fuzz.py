"""A time-bounded mutation fuzzer over valid model files (byte-level mutations, resealed so the
checksum does not stop them, and structure-aware ones through the format-2 wire writer) and over
store records (manifests, events, tombstones, ACTIVE, FORMAT: JSON-aware and byte-level
mutations, then every read and write a user would try).

The fuzz loop runs in a forked child so that a segfault or abort is seen as a dead child. A
crash is anything but a documented exception (CorruptModelError for model files, a
woodlot.WoodlotError for stores), a dead child, or a file appearing outside the store. For
store records it is also a crash when the one damaged record leaves the store unusable for
writes without saying why: after each case a save and a promote of a fresh model must work, or
fail with a woodlot error that names the damaged record (``writes_still_work``). Each crash is
kept in tests/reliability/regressions/ and replayed by test_kept_regressions_replay_cleanly.

Counts: time-bounded, not case-bounded. WOODLOT_FUZZ_SECONDS (default 60) is split 35 s for
model files and 25 s for store records; a default run on two busy cores did 29,000 model cases
and 140-400 store cases (each store case is a copy of the base store, every operation on it,
and a save + promote); at least 2,000 and 100 are required when the budget is 30 s or more.
WOODLOT_FUZZ_SEED (default 0) seeds it. The 5 kept cases in
regressions/ are replayed every run. cargo-fuzz targets for longer runs are in fuzz/.
"""

import json
import time

import pytest

from tests.reliability._budget import env_float, env_int
from tests.reliability._fuzzer import REGRESSIONS, keep_crasher, worker_fuzz, worker_replay

SECONDS = env_float("WOODLOT_FUZZ_SECONDS", 60.0)
SEED = env_int("WOODLOT_FUZZ_SEED", 0)
SPLIT = {"model": 35 / 60, "store": 25 / 60}
MIN_CASES = {"model": 2000, "store": 100}



def _fuzz(zygote, tmp_path, kind):
    budget = SECONDS * SPLIT[kind]
    deadline = time.monotonic() + budget
    state, out = tmp_path / "state", tmp_path / "out.json"
    cases, loaded, writable, kept, deaths, run = 0, 0, 0, [], [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0.5:
            break
        if out.exists():
            out.unlink()
        status = zygote.run(worker_fuzz, kind, SEED * 1000 + run, left, str(state), str(REGRESSIONS), str(out),
                            timeout=left + 120)
        run += 1
        if status == {"code": 0} and out.exists():
            r = json.loads(out.read_text())
            cases += r["cases"]
            loaded += r["loaded"]
            writable += r["writable"]
            kept += r["crashers"]
            continue
        # The child died on a case: the state file holds it.
        deaths.append(status)
        kept.append(keep_crasher(REGRESSIONS, state.read_bytes(), f"the fuzzing process died: {status}"))
        cases += 1
    return {"cases": cases, "loaded": loaded, "writable": writable, "kept": kept, "deaths": deaths, "runs": run}


@pytest.mark.parametrize("kind", ["model", "store"])
def test_mutation_fuzzer_finds_no_crash(zygote, tmp_path, kind):
    r = _fuzz(zygote, tmp_path, kind)
    print(f"fuzz {kind}: {r['cases']} cases, {r['loaded']} models loaded, {r['writable']} damaged stores still "
          f"took a save + promote, {len(r['kept'])} kept")
    assert not r["kept"], f"{len(r['kept'])} crashers kept in {REGRESSIONS}: {r['kept'][:5]} (deaths: {r['deaths'][:3]})"
    if SECONDS >= 30:
        assert r["cases"] >= MIN_CASES[kind], r
        # About half of the damaged stores take a save + promote (the rest refuse, naming the
        # damaged record): the writability check really ran, and writes really happened.
        assert kind == "model" or r["writable"] >= MIN_CASES["store"] // 4, r


def test_kept_regressions_replay_cleanly(tmp_path, zygote):
    paths = sorted(str(p) for p in REGRESSIONS.glob("*.case"))
    if not paths:
        pytest.skip("no kept regression cases")
    out = tmp_path / "replay.json"
    status = zygote.run(worker_replay, paths, str(out), timeout=300)
    assert status == {"code": 0}, f"replaying the kept cases killed the process: {status}"
    failing = {p: err for p, err in json.loads(out.read_text()).items() if err}
    assert not failing, "\n\n".join(f"{p}:\n{e}" for p, e in list(failing.items())[:3])
