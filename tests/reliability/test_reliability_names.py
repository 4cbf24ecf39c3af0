"""Hostile names through every API that takes one (aliases, references, tags, descriptions,
reasons). Each of the 48 names goes through each of 12 APIs, every write on a fresh copy of one
base store, and the outcome (success or the exact exception class) must be the one the rules
below predict for that name and that API: ``expected`` encodes the documented grammar of
references and aliases (src/store/names.rs) and the limits on free text, so a name that is
refused where it should work, or accepted where it should be refused, fails with its cell of
the table. No file ever appears outside a store directory or under a name the store did not
choose, and what is accepted as text is stored verbatim inside JSON.

Counts: 48 names x 12 APIs = 576 cells (9 of the APIs write, each on its own copy of the base
store).
"""

import json
import re
import shutil
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
    "champion",
]
DOCUMENTED = (InvalidNameError, VersionNotFoundError, ValueError, TypeError, woodlot.StoreError, woodlot.ConflictError)

# The base store: v1, v2, v3 saved; v1 promoted (the only promotion); alias champion -> v1.
BASE_VERSIONS = {1, 2, 3}
BASE_ACTIVE = 1
BASE_ALIASES = {"champion": 1}

READS = ["get", "load", "contains"]
WRITES = ["set_alias", "alias_roundtrip", "promote", "rollback", "delete", "remove_alias", "expect", "tag", "reason"]
APIS = READS + WRITES

# --- the rules (src/store/names.rs, src/store/store.rs, src/store/promote.rs) -----------------

VERSION_NAME = re.compile(r"v?([0-9]{1,19})")  # "3", "v3": ASCII digits only, at most 19
RESERVED = {"latest", "active", "none"}
TAG_NAME_MAX, DESCRIPTION_MAX, REASON_MAX = 256, 100_000, 10_000


def _alias_chars_ok(name: str) -> bool:
    return (
        0 < len(name.encode()) <= 64
        and all(c.isascii() and (c.isalnum() or c in "._-") for c in name)
        and name[0].isascii() and name[0].isalnum()
    )


def alias_name_ok(name: str) -> bool:
    """May ``name`` become an alias? ASCII letters, digits, '.', '_', '-', starting with a letter
    or digit, at most 64 bytes, and not a name that already refers to a version."""
    return _alias_chars_ok(name) and name not in RESERVED and not VERSION_NAME.fullmatch(name)


def resolve(name: str):
    """What ``name`` refers to in the base store: a version number, or the exception class a
    lookup raises."""
    if name == "latest":
        return max(BASE_VERSIONS)
    if name == "active":
        return BASE_ACTIVE
    m = VERSION_NAME.fullmatch(name)
    if m:
        n = int(m.group(1))
        return n if n in BASE_VERSIONS else VersionNotFoundError
    if not _alias_chars_ok(name):
        return InvalidNameError
    return BASE_ALIASES.get(name, VersionNotFoundError)


def _text_ok(s: str, limit: int) -> bool:
    """Free text (tags, descriptions, reasons): at most ``limit`` bytes, no control character
    but newline and tab (they would reach terminals through the history)."""
    return len(s.encode()) <= limit and not any(
        unicodedata.category(c) == "Cc" and c not in "\n\t" for c in s
    )


def expected(name: str, api: str) -> str:
    """The outcome of ``api`` called with ``name`` on the base store: "ok", "True"/"False"
    (contains), or an exception class name."""
    target = resolve(name)
    found = isinstance(target, int)
    if api in ("get", "load"):
        return "ok" if found else target.__name__
    if api == "contains":
        return str(found)  # never raises: a name that could never be a version is not in it
    if api in ("set_alias", "alias_roundtrip"):
        return "ok" if alias_name_ok(name) else "InvalidNameError"
    if api == "promote":
        # Promoting the version that is already active is allowed (it records the event).
        return "ok" if found else target.__name__
    if api == "rollback":
        # rollback(to=...) makes any live version active again, the active one included.
        return "ok" if found else target.__name__
    if api == "delete":
        if not found:
            return target.__name__
        # The active version and an alias target need force=True (StoreError says so).
        return "StoreError" if target == BASE_ACTIVE or target in BASE_ALIASES.values() else "ok"
    if api == "remove_alias":
        if not alias_name_ok(name):
            return "InvalidNameError"
        return "ok" if name in BASE_ALIASES else "VersionNotFoundError"
    if api == "expect":  # promote(2, expect_active=name)
        if name == "none":
            return "ConflictError"  # something is active
        m = VERSION_NAME.fullmatch(name)
        if m and int(m.group(1)) >= 1:
            # A version number is compared with the active one, not looked up: "v12 is not
            # active" is a conflict whether or not v12 exists.
            return "ok" if int(m.group(1)) == BASE_ACTIVE else "ConflictError"
        if not found:
            return target.__name__
        return "ok" if target == BASE_ACTIVE else "ConflictError"
    if api == "tag":  # save(..., tags={name: name}, description=name)
        return "ok" if _text_ok(name, TAG_NAME_MAX) and _text_ok(name, DESCRIPTION_MAX) else "ValueError"
    if api == "reason":  # promote(2, reason=name)
        return "ok" if _text_ok(name, REASON_MAX) else "ValueError"
    raise ValueError(api)


# --- running the table ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_bytes():
    return woodlot.dumps(small_model(0))


def _outcome(fn) -> tuple:
    try:
        return "ok", fn()
    except DOCUMENTED as e:
        assert str(e), f"{type(e).__name__} without a reason"
        return type(e).__name__, None


def _call(store, name: str, api: str, model: bytes) -> str:
    if api == "get":
        return _outcome(lambda: store.get(name))[0]
    if api == "load":
        return _outcome(lambda: store.load(name))[0]
    if api == "contains":
        kind, value = _outcome(lambda: name in store)
        return str(value) if kind == "ok" else kind
    if api == "set_alias":
        kind, _ = _outcome(lambda: store.set_alias(name, 2))
        if kind == "ok":
            assert store.aliases[name] == "v2"
        return kind
    if api == "alias_roundtrip":
        kind, _ = _outcome(lambda: store.set_alias(name, 3))
        if kind == "ok":
            # The alias resolves, through every API that reads one, to what it was set to.
            assert store.get(name).version == 3 and name in store
            assert store.promote(name).version == 3 and store.active.version == 3
        return kind
    if api == "promote":
        kind, v = _outcome(lambda: store.promote(name))
        if kind == "ok":
            assert store.active.version == resolve(name)
        return kind
    if api == "rollback":
        kind, v = _outcome(lambda: store.rollback(to=name))
        if kind == "ok":
            assert store.active.version == resolve(name)
        return kind
    if api == "delete":
        kind, _ = _outcome(lambda: store.delete(name))
        if kind == "ok":
            assert resolve(name) not in {v.version for v in store.versions()}
        return kind
    if api == "remove_alias":
        return _outcome(lambda: store.remove_alias(name))[0]
    if api == "expect":
        return _outcome(lambda: store.promote(2, expect_active=name))[0]
    if api == "tag":
        kind, v = _outcome(lambda: store.save(model, tags={name: name}, description=name))
        if kind == "ok":
            # Stored verbatim inside JSON: the exact string comes back, not a normalised one.
            again = woodlot.VersionStore(store.path).get(v.version)
            assert again.tags == {name: name} and again.description == name
        return kind
    if api == "reason":
        kind, _ = _outcome(lambda: store.promote(2, reason=name))
        if kind == "ok":
            assert store.history()[-1].raw.get("reason") == name
        return kind
    raise ValueError(api)


@pytest.fixture(scope="module")
def table(tmp_path_factory, model_bytes):
    top = tmp_path_factory.mktemp("names")
    base = top / "base" / "store"
    store = woodlot.VersionStore(base)
    for _ in range(3):
        store.save(model_bytes)
    store.promote(1)
    store.set_alias("champion", 1)
    before = tree_snapshot(top)
    cells = top / "cells"
    cells.mkdir()
    got, roots = {}, []
    reader = woodlot.VersionStore(base)
    for i, name in enumerate(HOSTILE):
        for api in APIS:
            if api in READS:
                got[(name, api)] = _call(reader, name, api, model_bytes)
                continue
            root = cells / f"{i:02d}-{api}" / "store"
            shutil.copytree(base, root)
            got[(name, api)] = _call(woodlot.VersionStore(root), name, api, model_bytes)
            roots.append(root)
    return {"top": top, "base": base, "before": before, "got": got, "roots": roots}


def test_every_name_gets_the_expected_outcome_from_every_api(table):
    got = table["got"]
    assert len(got) == len(HOSTILE) * len(APIS) == 576
    wrong = {f"{api}({name!r})": f"got {kind}, expected {expected(name, api)}"
             for (name, api), kind in got.items() if kind != expected(name, api)}
    assert not wrong, f"{len(wrong)} cells differ:\n" + "\n".join(f"  {k}: {v}" for k, v in list(wrong.items())[:40])


def test_the_rules_refuse_every_traversal_separator_control_and_look_alike_as_an_alias():
    # The rules themselves, for the names a path or a terminal would misread.
    for name in ("../x", "a/b", "a\\b", "/abs", ".", "..", "a\0b", "%2e%2e", "a" * 300,
                 unicodedata.normalize("NFD", "café"), "x\u202egpj.exe", "\u0430dmin", "\uff0e\uff0e",
                 "", "-rf", " lead", "latest", "v1", "12", "none"):
        assert not alias_name_ok(name), name
    for name in ("a\0b", "\x1b[31mred", "a\rb", "\x7f"):
        assert expected(name, "tag") == expected(name, "reason") == "ValueError", name


def test_no_file_appears_outside_a_store_or_under_a_name_the_store_did_not_choose(table):
    top = table["top"]
    after = tree_snapshot(top)
    changed = {p for p in set(after) ^ set(table["before"]) if not p.startswith("cells")}
    assert not changed, f"files appeared outside the stores: {sorted(changed)[:10]}"
    for root in table["roots"] + [table["base"]]:
        assert sorted(p.name for p in root.parent.iterdir()) == ["store"], f"something was written beside {root}"
        strange = [f for f in store_files(root) if not STORE_FILE.match(f)]
        assert not strange, (root, strange)
        for f in store_files(root):
            if f.startswith(("versions/", "events/")):
                json.loads((root / f).read_text())  # every record is still valid JSON
        assert woodlot.VersionStore(root).verify().ok, root
