"""The loader of damaged and hostile files (test_reliability_damaged.py), run in a forked child
under an address-space cap so that an over-allocation kills the child instead of passing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.reliability._checks import store_files
from tests.reliability._limits import cap_address_space, maxrss_kb, no_core


def _outcome(fn) -> list:
    import woodlot

    try:
        fn()
        return ["ok", ""]
    except woodlot.CorruptModelError as e:
        return ["CorruptModelError", str(e)]
    except Exception as e:
        return [type(e).__name__, str(e)]


def worker_load_cases(case_dir: str, store_root: str, out_path: str):
    """Loads every file in ``case_dir`` through woodlot.loads and woodlot.load, and every
    version of the store at ``store_root`` through store.load (plain and verify=True), under an
    address-space cap; records each outcome and the peak RSS before and after."""
    import numpy as np

    import woodlot

    no_core()
    x = np.zeros((2, 13))
    rss0 = maxrss_kb()
    cap_address_space()
    results = {}
    for p in sorted(Path(case_dir).iterdir()):
        data = p.read_bytes()

        def use():
            m = woodlot.loads(data)
            m.predict_proba(x[:, : m.n_features_in_])

        results[p.name] = _outcome(use)
        if sum(p.name.encode()) % 4 == 0:
            results[p.name + "@load(path)"] = _outcome(lambda: woodlot.load(p))
    if store_root:
        store = woodlot.VersionStore(store_root)
        for v in sorted(int(f[9:19]) for f in store_files(store_root) if f.startswith("versions/")):
            results[f"store v{v}"] = _outcome(lambda: store.load(v))
            results[f"store v{v} verify"] = _outcome(lambda: store.load(v, verify=True))
    Path(out_path).write_text(json.dumps({"results": results, "rss0_kb": rss0, "rss1_kb": maxrss_kb()}))
    return 0

