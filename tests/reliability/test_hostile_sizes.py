"""Hostile model files that claim sizes their bytes cannot back are refused before anything is
sized from the claim, and decoding any file holds at most a fixed multiple of its size.

The format's rule (src/format/claims.rs): a file may claim at most max(65,536, its size in
bytes) features, 8 classes per payload byte and one tree per 8 payload bytes; decoding holds at
most 48 bytes per byte of file (a dictionary-coded column stores a value in one bit and
decodes it to 32). The files here are built from a real model file: its head is kept, the
counts patched, the trees rewritten, and the checksum recomputed, so every check before the
one under test passes.

Self-contained on purpose (the layout helpers of the reliability suite are a reference, not a
dependency): the few format facts used are the 64-byte header and the tree layout of
src/format/payload/tree.rs.
"""

import json
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import woodlot
from woodlot import CorruptModelError, RandomForestClassifier
from tests.reliability._wire import varint

blake3 = pytest.importorskip("blake3")

HEADER_LEN = 64
MAX_DECODE_RATIO = 48


def seal(header: bytes, meta: bytes, payload: bytes) -> bytes:
    """A file of these sections with the header's lengths and checksum set."""
    head = bytearray(header[:HEADER_LEN])
    head[16:32] = struct.pack("<QQ", len(meta), len(payload))
    head[32:64] = bytes(32)
    body = bytes(head) + meta + payload
    digest = blake3.blake3(body).digest()
    return body[:32] + digest + body[64:]


def sections(data: bytes):
    meta_len, payload_len = struct.unpack_from("<QQ", data, 16)
    meta = data[HEADER_LEN : HEADER_LEN + meta_len]
    payload = data[HEADER_LEN + meta_len : HEADER_LEN + meta_len + payload_len]
    return data[:HEADER_LEN], json.loads(meta), payload


def head_end(payload: bytes, meta: dict) -> int:
    """Where the payload's bincode head ends: it closes with fit_info's fingerprint string,
    then n_samples u64 and fit_seconds f64."""
    fp = meta["fit"]["training_fingerprint"].encode()
    at = payload.index(fp)
    return at + len(fp) + 16


def one_leaf_tree(n_classes: int) -> bytes:
    """A lone leaf whose n_classes equal fractions are a one-entry dictionary column: one bit
    per value, the densest expansion the format allows."""
    raw = lambda values: b"\x00" + struct.pack(f"<{len(values)}f", *values)  # noqa: E731
    body = (
        varint(1)  # one node
        + b"\x01"  # it is a leaf
        + raw([])  # no thresholds (no split nodes: no missing_left or feature bits)
        + varint(1)  # n_samples
        + raw([0.5])  # impurity
        + raw([1.0])  # weighted_n_samples
        + b"\x01\x00"  # leaf values: dictionary of one entry
        + struct.pack("<f", 1.0 / n_classes)
        + bytes((n_classes + 7) // 8)  # every index 0
    )
    return varint(len(body)) + body


@pytest.fixture(scope="module")
def model_file():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.arange(60) % 3
    model = RandomForestClassifier(n_estimators=2, max_depth=2, random_state=0).fit(X, y)
    return woodlot.dumps(model)


def patched(data: bytes, *, n_features=None, n_classes=None, n_trees=None, trees=None) -> bytes:
    """The file with counts patched in the meta and in the payload's head, and optionally its
    trees replaced (`trees`: the encoded trees, without their count)."""
    header, meta, payload = sections(data)
    end = head_end(payload, meta)
    head, rest = bytearray(payload[:end]), payload[end:]
    if n_features is not None:
        meta["n_features"] = n_features
        head[0:4] = struct.pack("<I", n_features)
    if n_classes is not None:
        meta["n_classes"] = n_classes
        head[4:8] = struct.pack("<I", n_classes)
    if trees is not None:
        count, body = trees
        rest = varint(count) + body
        meta["n_trees"] = count
    if n_trees is not None:
        meta["n_trees"] = n_trees
    return seal(header, json.dumps(meta).encode(), bytes(head) + rest)


def test_the_builder_makes_files_the_decoder_accepts(model_file):
    # Guard for the tests below: unpatched, and with a rewritten tree, the files decode, so a
    # refusal below is the claim check and not a mistake in the builder.
    assert woodlot.loads(patched(model_file)).n_features_in_ == 3
    native, _ = woodlot._native.NativeForest.from_bytes(
        patched(model_file, n_classes=3, trees=(1, one_leaf_tree(3)))
    )
    assert native.n_trees == 1 and native.n_classes == 3


@pytest.mark.parametrize(
    "claim,expected",
    [
        (dict(n_features=2**32 - 1), "claims 4294967295 features"),
        (dict(n_features=65_537), "claims 65537 features"),
        (dict(n_classes=2**16), "claims 65536 classes"),
        (dict(n_classes=2**32 - 1), "claims 4294967295 classes"),
        (dict(n_trees=5_000_000), "claims 5000000 trees"),
    ],
    ids=["2^32-1 features", "65537 features", "2^16 classes", "2^32-1 classes", "5M trees"],
)
def test_a_kilobyte_file_claiming_huge_counts_is_corrupt(model_file, claim, expected):
    # One lone leaf of 3 classes: no split stores a feature index, so a file claiming more
    # features is otherwise consistent (and decoded before the claims were checked).
    data = patched(model_file, trees=(1, one_leaf_tree(3)), **claim)
    assert len(data) < 4096
    with pytest.raises(CorruptModelError, match=expected):
        woodlot._native.NativeForest.from_bytes(data)
    with pytest.raises(CorruptModelError):
        woodlot.loads(data)


CHILD = textwrap.dedent(
    """
    import resource, sys
    from woodlot._native import NativeForest
    data = open(sys.argv[1], "rb").read()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        NativeForest.from_bytes(data)
        outcome = "decoded"
    except Exception as e:
        outcome = type(e).__name__
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(outcome, (after - before) * 1024)
    """
)


def _peak_growth(path) -> tuple:
    """(outcome, bytes of peak RSS growth) of decoding the file in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, f"the decoding process died ({out.returncode}): {out.stderr}"
    outcome, growth = out.stdout.split()
    return outcome, int(growth)


@pytest.mark.parametrize("mib", [1, 4, 16])
def test_decoding_memory_is_a_bounded_multiple_of_the_file_at_every_size(model_file, tmp_path, mib):
    size = mib << 20
    n_classes = 8 * size
    data = patched(model_file, n_classes=n_classes, trees=(1, one_leaf_tree(n_classes)))
    path = tmp_path / "hostile.wdl"
    path.write_bytes(data)
    outcome, growth = _peak_growth(path)
    ratio = growth / len(data)
    assert ratio <= MAX_DECODE_RATIO, (
        f"decoding a {len(data)} byte file grew the process by {growth} bytes "
        f"({ratio:.1f} per byte; {outcome})"
    )

    # Truncating its leaf values makes the same claim unbacked: refused, and still bounded.
    short = patched(model_file, n_classes=n_classes, trees=(1, one_leaf_tree(n_classes // 2)))
    path.write_bytes(short)
    outcome, growth = _peak_growth(path)
    assert outcome == "CorruptModelError"
    assert growth / len(short) <= MAX_DECODE_RATIO
