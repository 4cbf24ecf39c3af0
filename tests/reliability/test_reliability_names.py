"""Hostile names through every API that takes one (aliases, references, tags, descriptions,
reasons): each is rejected with a documented error or stored verbatim inside JSON, and no file
ever appears outside the store directory (the parent directory is snapshotted before and after)
or under a name the store did not choose.
"""

import json
import unicodedata

import pytest

import woodlot
from woodlot import InvalidNameError, VersionNotFoundError
from tests.reliability._checks import STORE_FILE, store_files, tree_snapshot
from tests.reliability._models import small_model

HOSTILE = [
    "../x", "../../etc/passwd", "a/b", "a\\b", "/abs", "/tmp/evil", "C:\\evil", ".", "..", "",
    "a\0b", "\0", "a\nb", "a\rb", "a\tb", "\x1b[31mred", "\x7f", "%2e%2e", "%2e%2e%2fx", "..%2fx",
    "a" * 300, "é" * 150, unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café"),
    "x\u202egpj.exe", "\u200bzero-width", "\u0430dmin", "\uff0e\uff0e", "con", "NUL", "aux.txt",
    "~", "~root", "$HOME", "`id`", "a b", " lead", "trail ", "-rf", "v1", "latest", "active", "none",
    "12", "v0", "99999999999999999999", "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
]
DOCUMENTED = (InvalidNameError, VersionNotFoundError, ValueError, TypeError, woodlot.StoreError, woodlot.ConflictError)


@pytest.fixture(scope="module")
def model_bytes():
    return woodlot.dumps(small_model(0))


def _try(fn):
    try:
        return "ok", fn()
    except DOCUMENTED as e:
        assert str(e), "an error without a reason"
        return type(e).__name__, None


def test_hostile_names_never_become_paths(tmp_path, model_bytes):
    parent = tmp_path / "parent"
    parent.mkdir()
    root = parent / "store"
    store = woodlot.VersionStore(root)
    store.save(model_bytes)
    store.save(model_bytes)
    store.promote(1)
    before = tree_snapshot(tmp_path)
    accepted_aliases = []
    outcomes = {}
    for name in HOSTILE:
        o = {}
        o["set_alias"], _ = _try(lambda: store.set_alias(name, 2))
        if o["set_alias"] == "ok":
            accepted_aliases.append(name)
        o["get"], _ = _try(lambda: store.get(name))
        o["load"], _ = _try(lambda: store.load(name))
        o["promote"], _ = _try(lambda: store.promote(name))
        o["rollback"], _ = _try(lambda: store.rollback(to=name))
        o["delete"], _ = _try(lambda: store.delete(name))
        o["remove_alias"], _ = _try(lambda: store.remove_alias(name))
        o["expect"], _ = _try(lambda: store.promote(1, expect_active=name))
        o["contains"], _ = _try(lambda: name in store)
        o["tag"], v = _try(lambda: store.save(model_bytes, tags={name: name}, description=name))
        if o["tag"] == "ok":
            # Stored verbatim inside JSON: the exact string comes back, not a normalised one.
            assert store.get(v.version).tags == {name: name}
            assert store.get(v.version).description == name
            store.delete(v.version, force=True)
        o["reason"], _ = _try(lambda: store.promote(1, reason=name))
        outcomes[name] = o
    # Aliases are held to a plain ASCII alphabet: only the ordinary-looking names of the list
    # are accepted, never a traversal, separator, control or non-ASCII character.
    for a in accepted_aliases:
        assert a.isascii() and "/" not in a and "\\" not in a and a not in (".", "..")
        assert all(c.isalnum() or c in "._-" for c in a), a
    for name in ("../x", "a/b", "a\\b", "/abs", ".", "..", "a\0b", "%2e%2e", "a" * 300,
                 unicodedata.normalize("NFD", "café"), "x\u202egpj.exe"):
        assert outcomes[name]["set_alias"] == "InvalidNameError", (name, outcomes[name])
    # Control characters never reach the history either.
    for name in ("a\0b", "\x1b[31mred", "a\rb"):
        assert outcomes[name]["reason"] != "ok" and outcomes[name]["tag"] != "ok", (name, outcomes[name])
    # Nothing appeared outside the store, and inside it only the store's own names.
    after = tree_snapshot(tmp_path)
    outside = {p for p in set(after) ^ set(before) if not p.startswith("parent/store")}
    assert not outside, f"files appeared outside the store: {sorted(outside)[:10]}"
    strange = [f for f in store_files(root) if not STORE_FILE.match(f)]
    assert not strange, strange
    for f in store_files(root):
        if f.startswith(("versions/", "events/")):
            json.loads((root / f).read_text())  # every record is still valid JSON
    assert store.verify().ok
    n_ops = sum(len(o) for o in outcomes.values())
    assert n_ops >= 10 * len(HOSTILE)
