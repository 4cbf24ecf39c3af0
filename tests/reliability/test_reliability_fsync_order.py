"""The durability order of the local store, read from the system calls it makes rather than
hoped for from a lucky crash: a child process creates a store, saves two models, promotes both
and sets an alias under ``strace -f -y``, and tests/reliability/_strace.py checks that every
file it published was fsynced under its temp name before it was linked or renamed into place,
and that its directory was fsynced after (before anything else was published).

The checker is itself shown to fail: with any one of the trace's fsyncs removed (one case per
fsync of the store's files in the real trace), or a temp file's fsync moved after its link, it
reports a violation.

Counts: one traced run, which publishes 17 files (12 links, 5 renames: FORMAT, 4 blobs, 2
manifests, 5 events, 5 head hints) with 38 fsyncs of the store's files and directories; the
checker then runs on 38 broken copies of the trace (one fsync removed each) and 1 reordered one.

Needs ``strace`` (apt package ``strace``); it skips without it, unless
WOODLOT_REQUIRE_STRACE=1 (CI), which turns that skip into a failure.
"""

import os
import shutil
import subprocess
import sys

import pytest

import woodlot
from tests.reliability._models import small_model
from tests.reliability._strace import TRACED, parse, publishes, violations
from tests.reliability._zygote import REPO_ROOT

CHILD = r"""
import sys
import woodlot
root, a, b = sys.argv[1:4]
store = woodlot.VersionStore(root)
v1 = store.save(open(a, "rb").read(), tags={"t": "1"})
v2 = store.save(open(b, "rb").read())
store.promote(v1, reason="first")
store.promote(v2, reason="second")
store.set_alias("champion", v1)
print("done", flush=True)
"""


def _strace_or_skip():
    if shutil.which("strace") is None:
        why = "strace is not installed (apt-get install strace)"
        if os.environ.get("WOODLOT_REQUIRE_STRACE") == "1":
            pytest.fail(f"WOODLOT_REQUIRE_STRACE=1 but {why}")
        pytest.skip(why)


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    _strace_or_skip()
    d = tmp_path_factory.mktemp("strace")
    a, b = d / "a.wdl", d / "b.wdl"
    a.write_bytes(woodlot.dumps(small_model(0)))
    b.write_bytes(woodlot.dumps(small_model(1, n_estimators=4)))
    root = d / "store"
    log = d / "trace.txt"
    p = subprocess.run(
        ["strace", "-f", "-y", "-qq", "-e", f"trace={TRACED}", "-o", str(log),
         sys.executable, "-c", CHILD, str(root), str(a), str(b)],
        capture_output=True, text=True, timeout=300, cwd=str(REPO_ROOT),
    )
    if p.returncode != 0 and "ptrace" in p.stderr:
        why = f"strace cannot trace here: {p.stderr.strip()[-300:]}"
        if os.environ.get("WOODLOT_REQUIRE_STRACE") == "1":
            pytest.fail(why)
        pytest.skip(why)
    assert p.returncode == 0 and p.stdout.strip() == "done", p.stderr[-3000:]
    text = log.read_text()
    return str(root.resolve()), text, parse(text)


def test_every_published_file_was_fsynced_before_its_link_and_its_directory_after(traced):
    root, _, calls = traced
    pubs = publishes(calls, root)
    dsts = [os.path.relpath(p.dst, root) for p in pubs]
    # The run published what a store creation, two saves, two promotions and an alias write:
    # FORMAT, four blobs (two models, two probe sets), two manifests, five events, the head
    # hint each time an event is appended.
    assert "FORMAT" in dsts, dsts
    assert sum(d.startswith("blobs/") for d in dsts) == 4, dsts
    assert sorted(d for d in dsts if d.startswith("versions/")) == ["versions/0000000001.json", "versions/0000000002.json"]
    assert sum(d.startswith("events/") for d in dsts) == 5, dsts
    assert "ACTIVE" in dsts, dsts
    # Every file of the store outside tmp/ came through one of those publishes (the lock
    # file excepted: it holds no data), so the check below covers all of them.
    on_disk = set()
    for dirpath, _, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), root)
            if not rel.startswith("tmp/") and rel != "LOCK":
                on_disk.add(rel)
    assert on_disk <= set(dsts), sorted(on_disk - set(dsts))
    problems = violations(calls, root)
    assert not problems, "\n".join(problems[:20])


def _fsync_lines(text: str, root: str) -> list:
    """Line numbers of the fsyncs of the store's own files and directories."""
    out = []
    for i, line in enumerate(text.splitlines()):
        if ("fsync(" in line or "fdatasync(" in line) and f"<{root}" in line:
            out.append(i)
    return out


def test_the_checker_fails_when_any_one_fsync_is_missing(traced):
    root, text, _ = traced
    lines = text.splitlines()
    fsyncs = _fsync_lines(text, root)
    # Temp-file fsyncs, directory fsyncs: at least one of each per published file.
    assert len(fsyncs) >= 2 * len(publishes(parse(text), root)), len(fsyncs)
    missed = []
    for i in fsyncs:
        broken = "\n".join(lines[:i] + lines[i + 1 :])
        if not violations(parse(broken), root):
            missed.append(lines[i])
    assert not missed, f"removing these fsyncs went unnoticed: {missed[:5]}"


def test_the_checker_fails_when_a_temp_fsync_comes_after_the_link(traced):
    root, text, calls = traced
    lines = text.splitlines()
    pub = next(p for p in publishes(calls, root) if p.how == "link")
    link_line = lines.index(calls[pub.index].line)
    sync_line = max(i for i in range(link_line) if "fsync(" in lines[i] and f"<{pub.src}>" in lines[i])
    moved = lines[:sync_line] + lines[sync_line + 1 : link_line + 1] + [lines[sync_line]] + lines[link_line + 1 :]
    problems = violations(parse("\n".join(moved)), root)
    assert any("not fsynced after its last write" in p for p in problems), problems
