"""Small real model files, and the header layout of ``src/format/header.rs`` to build hostile
ones byte by byte (resealed with the ``blake3`` package so the checksum passes and the deeper
checks are reached)."""

from __future__ import annotations

import struct

MAGIC = b"\x89WDL\r\n\x1a\n"
HEADER_LEN = 64


def small_model(seed: int = 0, n_estimators: int = 3, max_depth: int = 3):
    """A small fitted woodlot forest on the wine data."""
    from sklearn.datasets import load_wine

    import woodlot

    X, y = load_wine(return_X_y=True)
    return woodlot.RandomForestClassifier(
        n_estimators=n_estimators, max_depth=max_depth, random_state=seed
    ).fit(X, y)


def split_file(data: bytes):
    """(header fields, meta bytes, payload bytes) of a model file, per src/format/header.rs."""
    major, minor, flags, meta_len, payload_len = struct.unpack_from("<HHIQQ", data, 8)
    meta = data[HEADER_LEN : HEADER_LEN + meta_len]
    payload = data[HEADER_LEN + meta_len : HEADER_LEN + meta_len + payload_len]
    return (major, minor, flags, meta_len, payload_len), meta, payload


def seal(data: bytes) -> bytes:
    """Writes the file checksum: BLAKE3 of the whole file with bytes 32..64 zeroed."""
    import blake3

    b = bytearray(data)
    if len(b) < HEADER_LEN:
        return bytes(b)
    b[32:64] = bytes(32)
    b[32:64] = blake3.blake3(bytes(b)).digest()
    return bytes(b)


def assemble(meta: bytes, payload: bytes, major=1, minor=0, flags=0, meta_len=None, payload_len=None) -> bytes:
    """A sealed model file from sections (lengths may be overridden to lie)."""
    head = MAGIC + struct.pack(
        "<HHIQQ",
        major,
        minor,
        flags,
        len(meta) if meta_len is None else meta_len,
        len(payload) if payload_len is None else payload_len,
    )
    return seal(head + bytes(32) + meta + payload)

