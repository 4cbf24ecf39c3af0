"""The mutation fuzzer (test_reliability_fuzz.py): byte-level and structure-aware mutations of
model files, JSON-aware and byte-level mutations of store records, the store operations a user
would try on a damaged store, and the kept crash cases under ``regressions/`` with their replay.
The fuzz loop and the replay run in forked children of the fork server."""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
from pathlib import Path

from tests.reliability._limits import cap_address_space, no_core
from tests.reliability._models import seal

REGRESSIONS = Path(__file__).resolve().parent / "regressions"


INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 1 << 31, (1 << 32) - 1, 1 << 32, 1 << 50, 1 << 62, (1 << 63), (1 << 64) - 1]


def mutate_bytes(rng, data: bytes, seeds: list) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 4, 8))):
        op = rng.randrange(11)
        n = len(b)
        at = rng.randrange(n) if n else 0
        if op == 0 and n:
            b[at] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            b[at] = rng.choice((0, 1, 0x7F, 0x80, 0xFF))
        elif op == 2:
            width = rng.choice((2, 4, 8))
            v = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
            b[at : at + width] = v.to_bytes(width, "little")
        elif op == 3:
            from tests.reliability._wire import varint

            enc = varint(rng.choice(INTERESTING) & ((1 << 64) - 1))
            b[at : at + len(enc)] = enc
        elif op == 4:
            b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elif op == 5 and n:
            del b[at : at + rng.randrange(1, 33)]
        elif op == 6 and n:
            end = min(n, at + rng.randrange(1, 33))
            b[at:at] = b[at:end]
        elif op == 7:
            del b[rng.randrange(n + 1) :]
        elif op == 8 and seeds:
            other = rng.choice(seeds)
            if other:
                s = rng.randrange(len(other))
                chunk = other[s : s + rng.randrange(1, 64)]
                b[at : at + len(chunk)] = chunk
        elif op == 9:
            b[at : at + 4] = struct.pack("<I", rng.choice((0x7FC00000, 0x7F800000, 0xFF800000, 0x00000001, 0x80000000)))
        elif op == 10:
            b[at : at + 8] = struct.pack("<d", rng.choice((float("nan"), float("inf"), -0.0, 1e308, 5e-324)))
    return bytes(b)


def mutate_model(rng, data: bytes, seeds: list) -> bytes:
    """A mutated model file: byte-level (resealed most of the time, so the checksum does not
    stop everything) or structure-aware through the format-2 wire writer."""
    from tests.reliability._wire import f32bits, locate

    if rng.random() < 0.3:
        wf = locate(data)
        if wf is not None:
            t = rng.choice(wf.trees)
            k = rng.randrange(8)
            if k == 0:
                i = rng.randrange(len(t.is_leaf))
                t.is_leaf[i] ^= 1
            elif k == 1 and t.features:
                t.features[rng.randrange(len(t.features))] = rng.randrange(1 << max(wf.width, 1))
            elif k == 2 and t.thresholds:
                t.thresholds[rng.randrange(len(t.thresholds))] = rng.choice(
                    (0x7FC00000, 0x7F800000, 0xFF800000, f32bits(rng.uniform(-1e6, 1e6))))
            elif k == 3 and t.leaf_values:
                t.leaf_values[rng.randrange(len(t.leaf_values))] = rng.choice(
                    (0x7FC00000, f32bits(-1.0), f32bits(2.0), f32bits(0.0), f32bits(1.0)))
            elif k == 4:
                t.n_nodes = rng.choice((0, 1, len(t.is_leaf) - 1, len(t.is_leaf) + 1, 1 << 32, 1 << 40))
            elif k == 5:
                wf.tree_count = rng.choice((0, len(wf.trees) - 1, len(wf.trees) + 1, 1 << 50))
            elif k == 6 and t.n_samples:
                t.n_samples[rng.randrange(len(t.n_samples))] = rng.choice((0, (1 << 32) - 1, 1 << 32))
            else:
                del t.is_leaf[rng.randrange(len(t.is_leaf)) :]
            return wf.encode()
    out = mutate_bytes(rng, data, seeds)
    return seal(out) if rng.random() < 0.8 else out


def _json_mutation(rng, data: bytes) -> bytes:
    """Replaces one JSON scalar or drops one key of a store record."""
    try:
        doc = json.loads(data)
    except ValueError:
        return data
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append(path + [k])
                walk(v, path + [k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append(path + [i])
                walk(v, path + [i])

    walk(doc, [])
    if not paths:
        return data
    path = rng.choice(paths)
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    if isinstance(parent, dict) and rng.random() < 0.2:
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice([
            None, True, -1, 0, 1, 2, 3, 10**30, 2**64, 2**63 - 1, -(2**63), 1.5, "x", "", "../../../escape",
            "0" * 64, "a" * 64, [], {}, {"active": 1}, "v1", "\u202e", 1e308,
        ])
    return json.dumps(doc).encode()


STORE_TARGETS = ["ACTIVE", "FORMAT", "versions/0000000001.json", "versions/0000000002.json",
                 "versions/0000000003.json", "versions/0000000003.deleted"] + [
    f"events/{i:012d}.json" for i in range(1, 9)]


def build_fuzz_base_store(root, models: list):
    import woodlot

    s = woodlot.VersionStore(root)
    s.save(models[0], tags={"t": "1"}, metrics={"acc": 0.9})
    s.save(models[1 % len(models)])
    s.promote(1, reason="first")
    s.promote(2)
    s.set_alias("champion", 1)
    s.save(models[2 % len(models)])
    s.delete(3, reason="bad")
    s.rollback()
    return s


def run_store_case(work: Path, model: bytes) -> None:
    """Every read and write a user would try on a store with one damaged record."""
    import woodlot

    try:
        s = woodlot.VersionStore(work)
    except woodlot.WoodlotError:
        return
    ops = [
        lambda: s.versions(), lambda: s.history(), lambda: s.active, lambda: s.aliases,
        lambda: s.verify(), lambda: s.load("active", verify=True), lambda: s.get(1), lambda: s.load(2),
        lambda: s.get("champion"), lambda: s.save(model), lambda: s.promote(1), lambda: s.rollback(),
        lambda: s.set_alias("x", "latest"), lambda: s.gc(dry_run=True), lambda: s.gc(grace_seconds=0),
        lambda: len(s), lambda: repr(s),
    ]
    for op in ops:
        try:
            op()
        except woodlot.WoodlotError:
            pass


def damaged_names(target: str) -> list:
    """The ways an error may name the damaged record ``target``: its path, its file name, and
    the version or event it holds ("v3", "event 5", "event file 5")."""
    base = target.rsplit("/", 1)[-1]
    names = [target, base]
    stem = base.split(".", 1)[0]
    if target.startswith("versions/") and stem.isdigit():
        names.append(f"v{int(stem)}")
    if target.startswith("events/") and stem.isdigit():
        names += [f"event {int(stem)}", f"event file {int(stem)}"]
    return names


def writes_still_work(work: Path, model: bytes, target: str) -> tuple:
    """(took, problem): whether a save and a promote of it worked on the store with one damaged
    record, and "" if that is acceptable: they worked, or failed with a woodlot error that names
    the damaged record (so the user knows what to repair). One damaged file must never leave a
    store silently unusable for writes."""
    import woodlot

    try:
        s = woodlot.VersionStore(work)
        v = s.save(model, tags={"after": "damage"})
        s.promote(v, reason="after damage")
        if s.active is None or s.active.version != v.version:
            return False, f"promote of v{v.version} returned but v{v.version} is not active"
        return True, ""
    except woodlot.WoodlotError as e:
        msg = str(e)
        if any(n in msg for n in damaged_names(target)):
            return False, ""
        return False, (f"one damaged record ({target}) made the store unusable for writes, and the "
                       f"error does not name it: {type(e).__name__}: {msg}")


def keep_crasher(crash_dir, case: bytes, err: str) -> str:
    """Keeps a crashing case as ``<crash_dir>/<kind>-<sha1>.case`` (first line: ``model`` or
    ``store <file>``; then the bytes), with the error beside it."""
    import hashlib

    kind = case.split(b"\n", 1)[0].split()[0].decode()
    p = Path(crash_dir) / f"{kind}-{hashlib.sha1(case).hexdigest()[:16]}.case"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(case)
    p.with_suffix(".txt").write_text(err)
    return str(p)


_SEEDS = None


def fuzz_seed_models() -> list:
    """Valid model files of varied shapes, made by the installed build (so they follow its
    format): many and few features, two and three classes, oob estimates, deep trees."""
    global _SEEDS
    if _SEEDS is None:
        import numpy as np
        from sklearn.datasets import load_iris, load_wine

        import woodlot

        X, y = load_wine(return_X_y=True)
        Xi, yi = load_iris(return_X_y=True)
        rng = np.random.default_rng(0)
        X1 = rng.normal(size=(60, 1))
        y1 = (X1[:, 0] > 0).astype(int)
        RF = woodlot.RandomForestClassifier
        _SEEDS = [
            woodlot.dumps(RF(n_estimators=3, max_depth=3, random_state=0).fit(X, y)),
            woodlot.dumps(RF(n_estimators=2, oob_score=True, random_state=1).fit(Xi, yi)),
            woodlot.dumps(RF(n_estimators=2, max_depth=2, random_state=2).fit(X1, y1)),
            woodlot.dumps(RF(n_estimators=1, random_state=3).fit(Xi, np.array(["a", "b", "c"])[yi])),
            woodlot.dumps(RF(n_estimators=2, max_depth=None, min_samples_leaf=1, random_state=4).fit(X[:40], y[:40])),
        ]
    return _SEEDS


def worker_fuzz(kind: str, seed: int, seconds: float, state_path: str, crash_dir: str, out_path: str):
    import random
    import tempfile
    import traceback

    import numpy as np

    import woodlot

    no_core()
    rng = random.Random(seed)
    seeds = fuzz_seed_models()
    xs = np.random.default_rng(seed).normal(size=(4, 40))
    xs[0, ::3] = np.nan
    state = os.open(state_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    crashers, cases, loaded, writable = [], 0, 0, 0
    deadline = time.monotonic() + seconds
    sandbox = Path(tempfile.mkdtemp(prefix="woodlot-fuzz-"))
    base = sandbox / "base"
    if kind == "store":
        build_fuzz_base_store(base, seeds)
    cap_address_space(2 << 30)

    def keep(data: bytes, name: str, err: str):
        header = b"model" if name == "model" else b"store " + name[len("store-"):].encode()
        crashers.append(keep_crasher(crash_dir, header + b"\n" + data, err))

    while time.monotonic() < deadline:
        cases += 1
        if kind == "model":
            data = mutate_model(rng, rng.choice(seeds), seeds)
            os.ftruncate(state, 0)
            os.pwrite(state, b"model\n" + data, 0)
            try:
                m = woodlot.loads(data)
                m.predict_proba(xs[:, : m.n_features_in_])
                woodlot.loads(woodlot.dumps(m))
                loaded += 1
            except woodlot.CorruptModelError as e:
                if not str(e):
                    keep(data, "model", "CorruptModelError without a reason")
            except BaseException as e:  # noqa: BLE001 - anything else is a crasher
                keep(data, "model", traceback.format_exc())
        else:
            target = rng.choice(STORE_TARGETS)
            work = sandbox / "work"
            if work.exists():
                shutil.rmtree(work)
            shutil.copytree(base, work)
            p = work / target
            original = p.read_bytes() if p.exists() else b""
            r = rng.random()
            if r < 0.45:
                data = _json_mutation(rng, original)
            elif r < 0.9:
                data = mutate_bytes(rng, original, [original])
            else:
                data = rng.choice([b"", b"\0" * 100, b"{}", b"[]", b"null", b"99999999999999999999999", b"-1", b"\xff" * 10])
            tag = target.replace("/", "__")
            os.ftruncate(state, 0)
            os.pwrite(state, f"store {tag}\n".encode() + data, 0)
            p.write_bytes(data)
            try:
                run_store_case(work, seeds[0])
                took, blocked = writes_still_work(work, seeds[1], target)
                if blocked:
                    keep(data, f"store-{tag}", blocked)
                writable += took
            except BaseException:  # noqa: BLE001
                keep(data, f"store-{tag}", traceback.format_exc())
            stray = sorted(x.name for x in sandbox.iterdir() if x.name not in ("base", "work"))
            if stray:
                keep(data, f"store-{tag}", f"files appeared outside the store: {stray}")
                for x in stray:
                    shutil.rmtree(sandbox / x, ignore_errors=True)
    shutil.rmtree(sandbox, ignore_errors=True)
    Path(out_path).write_text(json.dumps({"cases": cases, "loaded": loaded, "writable": writable, "crashers": crashers}))
    return 0


def replay_case(path: str) -> str:
    """Replays one kept crasher; returns "" if it now behaves (a documented error or success)."""
    import tempfile
    import traceback

    import woodlot

    raw = Path(path).read_bytes()
    header, _, data = raw.partition(b"\n")
    kind = header.split()
    try:
        if kind[0] == b"model":
            try:
                m = woodlot.loads(data)
                import numpy as np

                m.predict_proba(np.zeros((2, m.n_features_in_)))
            except woodlot.CorruptModelError as e:
                assert str(e)
        else:
            target = kind[1].decode().replace("__", "/")
            seeds = fuzz_seed_models()
            with tempfile.TemporaryDirectory() as d:
                base = Path(d) / "store"
                build_fuzz_base_store(base, seeds)
                (base / target).write_bytes(data)
                run_store_case(base, seeds[0])
                _, blocked = writes_still_work(base, seeds[1], target)
                assert not blocked, blocked
                stray = [x for x in Path(d).iterdir() if x.name != "store"]
                assert not stray, stray
        return ""
    except BaseException:  # noqa: BLE001
        return traceback.format_exc()


def worker_replay(paths: list, out_path: str):
    no_core()
    cap_address_space(2 << 30)
    results = {p: replay_case(p) for p in paths}
    Path(out_path).write_text(json.dumps(results))
    return 0
