"""Two Unix users sharing one store directory, as teams do (issue 8): a setgid, group-writable
directory and ``umask 002``. Both users save (reusing each other's blobs), promote, roll back,
delete and gc, and every file stays group-writable.

Setting up such a directory (what the README tells teams)::

    sudo groupadd mlteam && sudo usermod -aG mlteam alice && sudo usermod -aG mlteam bob
    sudo mkdir -p /srv/models && sudo chgrp mlteam /srv/models && sudo chmod 2775 /srv/models
    # and every writer runs with umask 002 (e.g. in ~/.profile or the service unit: UMask=0002)

The writers run as two throwaway numeric uids of one throwaway gid through ``setpriv`` (no user
is created). Root is needed to switch uids; CI runs as root, and with
``WOODLOT_REQUIRE_PRIVILEGED_TESTS=1`` (set by ``.ci/run``) a skip here is a failure. When the
Python installation is not readable by other users (a pyenv under ``/root``), the children get
``CAP_DAC_READ_SEARCH``, which lets them *read* any file; every write, ``futimens`` and lock is
still checked against their own uid and gid, which is what this test is about."""

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap

import pytest

import woodlot
from woodlot import RandomForestClassifier

GID = 4242
ALICE, BOB = 4101, 4102


def privileged_reason() -> str:
    if os.name != "posix" or os.geteuid() != 0:
        return "switching to other uids needs root (CI runs as root)"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    return ""


def require_privileged():
    why = privileged_reason()
    if why:
        if os.environ.get("WOODLOT_REQUIRE_PRIVILEGED_TESTS") == "1":
            pytest.fail(f"WOODLOT_REQUIRE_PRIVILEGED_TESTS=1 but: {why}")
        pytest.skip(why)


def _setpriv(uid: int, gid: int, caps: bool) -> list:
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
    if caps:
        cmd += ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    return cmd


def run_as(uid: int, gid: int, code: str, timeout: float = 120.0) -> dict:
    """Runs `code` as uid:gid with umask 002 in a fresh interpreter; it prints one JSON line."""
    script = "import os, json\nos.umask(0o002)\n" + textwrap.dedent(code)
    for caps in (False, True):
        done = subprocess.run(_setpriv(uid, gid, caps) + [sys.executable, "-c", script],
                              capture_output=True, text=True, timeout=timeout, cwd="/")
        if done.returncode == 0:
            return json.loads(done.stdout.strip().splitlines()[-1])
        if caps or "ModuleNotFoundError" not in done.stderr and "Permission denied" not in done.stderr:
            break
    raise AssertionError(f"uid {uid} failed:\n{done.stderr}")


@pytest.fixture(scope="module")
def models(iris):
    X, y = iris
    a = RandomForestClassifier(n_estimators=5, max_depth=2, random_state=0).fit(X, y)
    b = RandomForestClassifier(n_estimators=7, max_depth=3, random_state=1).fit(X, y)
    return woodlot.dumps(a), woodlot.dumps(b)


@pytest.fixture
def shared(models):
    require_privileged()
    base = tempfile.mkdtemp(prefix="woodlot-shared-")
    os.chmod(base, 0o755)  # other users must traverse it
    try:
        for name, data in zip(("a.wdl", "b.wdl"), models):
            with open(os.path.join(base, name), "wb") as f:
                f.write(data)
            os.chmod(os.path.join(base, name), 0o644)
        team = os.path.join(base, "team")
        os.mkdir(team)
        os.chown(team, 0, GID)
        os.chmod(team, 0o2775)  # setgid + group-writable: what a team directory looks like
        yield base, os.path.join(team, "models")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _writer(base: str, root: str, ops: str) -> str:
    return f"""
        import woodlot
        a = open({os.path.join(base, 'a.wdl')!r}, 'rb').read()
        b = open({os.path.join(base, 'b.wdl')!r}, 'rb').read()
        s = woodlot.VersionStore({root!r})
        out = {{}}
{textwrap.indent(textwrap.dedent(ops), ' ' * 8)}
        print(json.dumps(out))
    """


def test_two_users_save_promote_delete_and_gc_in_a_group_directory(shared):
    base, root = shared
    first = run_as(ALICE, GID, _writer(base, root, """
        v = s.save(a, tags={"by": "alice"})
        s.promote(v, reason="alice's first")
        out["v"] = v.version
    """))
    assert first == {"v": 1}
    # Bob reuses Alice's blob (a refresh of a file he does not own), adds his own, moves the
    # active version, rolls back, and collects garbage including Alice's temp/debris.
    second = run_as(BOB, GID, _writer(base, root, """
        out["same"] = s.save(a, tags={"by": "bob"}).version
        v = s.save(b, tags={"by": "bob"})
        s.promote(v, reason="bob's", expect_active=1)
        s.rollback(reason="bob changes his mind")
        s.set_alias("champion", 3)
        out["gc"] = sorted(s.gc(grace_seconds=0))
        out["active"] = s.active.version
    """))
    assert second["same"] == 2 and second["active"] == 1, second
    third = run_as(ALICE, GID, _writer(base, root, """
        out["v"] = s.save(b, tags={"by": "alice"}).version
        s.promote(4, reason="alice's second", expect_active=1)
        s.delete(2, reason="duplicate")
        s.gc(grace_seconds=0)
        out["active"] = s.active.version
        out["problems"] = list(s.verify().problems)
        out["versions"] = [v.version for v in s.versions()]
    """))
    assert third == {"v": 4, "active": 4, "problems": [], "versions": [1, 3, 4]}, third

    owners = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            owners.add(st.st_uid)
            assert st.st_gid == GID, f"{path}: group {st.st_gid} (the setgid directory's group)"
            assert st.st_mode & stat.S_IWGRP, f"{path}: mode {oct(st.st_mode)} is not group-writable"
            if stat.S_ISDIR(st.st_mode):
                assert st.st_mode & stat.S_ISGID, f"{path}: lost the setgid bit"
    assert owners == {ALICE, BOB}, owners
    lock = os.stat(os.path.join(root, "LOCK"))
    assert stat.S_IMODE(lock.st_mode) == 0o664, oct(lock.st_mode)


def test_a_blob_written_under_a_stricter_umask_is_still_reusable(shared):
    """Alice forgot ``umask 002`` (her files are 0644): Bob can still save the same model, whose
    blob he may not write. The refresh gc's grace period needs then rewrites the blob under his
    name (same bytes, temp + rename) instead of failing."""
    base, root = shared
    strict = _writer(base, root, """
        v = s.save(a)
        s.promote(v, reason="alice, umask 022")
        out["digest"] = v.digest
    """)
    run_as(ALICE, GID, _writer(base, root, ""))  # the store itself made under umask 002
    first = run_as(ALICE, GID, "os.umask(0o022)\n" + textwrap.dedent(strict))
    blob = os.path.join(root, "blobs", first["digest"])
    assert stat.S_IMODE(os.stat(blob).st_mode) == 0o644 and os.stat(blob).st_uid == ALICE
    second = run_as(BOB, GID, _writer(base, root, """
        out["v"] = s.save(a).version
        out["ok"] = s.verify().ok
        out["same"] = s.load(2, verify=True) is not None
    """))
    assert second == {"v": 2, "ok": True, "same": True}, second
    assert os.stat(blob).st_uid == BOB, "refreshed by rewriting it under Bob's name"
