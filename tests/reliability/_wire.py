"""A small Python reader/writer of the format-2 tree payload (src/format/payload/), used only to
build structurally hostile model files with a valid checksum. It re-encodes every f32 column
in raw mode (a valid, if not the smallest, encoding), so a re-encoded file decodes to the same
forest. If the format's major version moves on, ``locate`` returns None and the structural
tests skip with that reason (the layout-independent tests keep running).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

from tests.reliability._models import assemble, split_file

SUPPORTED_MAJOR = 2


class WireError(ValueError):
    pass


class Reader:
    def __init__(self, b: bytes):
        self.b, self.at = b, 0

    def take(self, n: int) -> bytes:
        if n > len(self.b) - self.at:
            raise WireError("ends early")
        out = self.b[self.at : self.at + n]
        self.at += n
        return out

    def varint(self) -> int:
        v = 0
        for i in range(10):
            (c,) = self.take(1)
            v |= (c & 0x7F) << (7 * i)
            if not c & 0x80:
                if c == 0 and i > 0:
                    raise WireError("redundant varint")
                return v
        raise WireError("varint too long")

    def bits(self, count: int, width: int) -> list:
        raw = self.take((count * width + 7) // 8)
        acc = int.from_bytes(raw, "little")
        mask = (1 << width) - 1
        out = [(acc >> (i * width)) & mask for i in range(count)]
        if width and acc >> (count * width):
            raise WireError("nonzero padding")
        return out

    def f32s(self, count: int) -> list:
        """Raw f32 bit patterns (ints), so NaN payloads survive."""
        (mode,) = self.take(1)
        if mode == 0:
            return list(struct.unpack(f"<{count}I", self.take(4 * count)))
        if mode == 1:
            (k1,) = self.take(1)
            entries = list(struct.unpack(f"<{k1 + 1}I", self.take(4 * (k1 + 1))))
            w = max(1, k1.bit_length())
            return [entries[i] for i in self.bits(count, w)]
        if mode == 2:
            return [struct.unpack("<I", struct.pack("<f", float(self.varint())))[0] for _ in range(count)]
        raise WireError(f"column mode {mode}")


def varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def bits(values, width: int) -> bytes:
    acc = 0
    values = list(values)
    for i, v in enumerate(values):
        acc |= (v & ((1 << width) - 1)) << (i * width)
    return acc.to_bytes((len(values) * width + 7) // 8, "little")


def raw_column(values) -> bytes:
    return b"\x00" + struct.pack(f"<{len(values)}I", *values)


def f32bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


@dataclass
class WireTree:
    is_leaf: list
    missing: list
    features: list
    thresholds: list  # f32 bit patterns
    n_samples: list
    impurity: list
    weighted: list
    leaf_values: list
    n_nodes: int = None  # override the stored count
    extra: bytes = b""

    def encode(self, width: int) -> bytes:
        n = len(self.is_leaf) if self.n_nodes is None else self.n_nodes
        return (
            varint(n)
            + bits(self.is_leaf, 1)
            + bits(self.missing, 1)
            + bits(self.features, width)
            + raw_column(self.thresholds)
            + b"".join(varint(v) for v in self.n_samples)
            + raw_column(self.impurity)
            + raw_column(self.weighted)
            + raw_column(self.leaf_values)
            + self.extra
        )


def read_tree(body: bytes, n_classes: int, width: int) -> WireTree:
    r = Reader(body)
    n = r.varint()
    if not 1 <= n <= 1 << 20:
        raise WireError("node count")
    is_leaf = r.bits(n, 1)
    n_leaves = sum(is_leaf)
    n_splits = n - n_leaves
    t = WireTree(
        is_leaf=is_leaf,
        missing=r.bits(n_splits, 1),
        features=r.bits(n_splits, width),
        thresholds=r.f32s(n_splits),
        n_samples=[r.varint() for _ in range(n)],
        impurity=r.f32s(n),
        weighted=r.f32s(n),
        leaf_values=r.f32s(n_leaves * n_classes),
    )
    if r.at != len(body):
        raise WireError("tree has leftover bytes")
    return t


@dataclass
class WireFile:
    meta: bytes
    head: bytes
    trees: list
    n_features: int
    n_classes: int
    tree_count: int = None  # override the stored count
    trailing: bytes = b""
    width: int = field(init=False)

    def __post_init__(self):
        self.width = max(0, self.n_features - 1).bit_length()

    def encode(self, bodies=None) -> bytes:
        if bodies is None:
            bodies = [t.encode(self.width) for t in self.trees]
        n = len(bodies) if self.tree_count is None else self.tree_count
        payload = self.head + varint(n) + b"".join(varint(len(b)) + b for b in bodies) + self.trailing
        return assemble(self.meta, payload, major=SUPPORTED_MAJOR)


def locate(data: bytes):
    """Parses a valid model file into head bytes + trees, or None if its layout is not the
    format-2 wire this module knows."""
    (major, _, _, _, _), meta, payload = split_file(data)
    if major != SUPPORTED_MAJOR:
        return None
    m = json.loads(meta)
    n_trees, n_features, n_classes = m["n_trees"], m["n_features"], m["n_classes"]
    width = max(0, n_features - 1).bit_length()
    for k in range(len(payload)):
        r = Reader(payload[k:])
        try:
            if r.varint() != n_trees:
                continue
            trees = []
            for _ in range(n_trees):
                body = r.take(r.varint())
                trees.append(read_tree(body, n_classes, width))
            if r.at != len(payload) - k:
                continue
        except (WireError, struct.error, IndexError):
            continue
        return WireFile(meta=meta, head=payload[:k], trees=trees, n_features=n_features, n_classes=n_classes)
    return None
