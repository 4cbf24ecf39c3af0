"""Reading an ``strace -f -y`` log of store operations and checking the durability order of
every file the store published (test_reliability_fsync_order.py).

A store record is published by writing it under ``tmp/``, fsyncing it, then hard-linking
(create-only) or renaming (replace) it to its name, then fsyncing the directory that holds the
name. If the temp file's fsync came after the link, a power cut could leave a named record with
no content; if the directory's fsync were missing, a completed write could vanish; if the next
record were published before the directory of the previous one was fsynced, a record could
survive that refers to one that did not. ``violations`` names each such break.

The parser knows only what it needs: one call per line (``<unfinished ...>`` and
``<... resumed>`` halves joined per pid), its arguments split at top-level commas, quoted
strings decoded, ``-y`` fd annotations (``5</path>``) read as paths.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

TRACED = "openat,write,fsync,fdatasync,link,linkat,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,close"

LINE = re.compile(r"^(?P<pid>\d+)\s+(?P<name>\w+)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+|\?)(?P<rest>.*)$")
FD_PATH = re.compile(r"^(-?\d+)<(.*)>$")


@dataclass
class Call:
    index: int
    pid: int
    name: str
    args: list
    ret: int
    ret_path: str = ""  # openat's new fd, as -y shows it
    line: str = field(default="", repr=False)

    def fd_path(self, i: int = 0) -> str:
        """The path behind an fd argument (``5</a/b>``), or ""."""
        m = FD_PATH.match(self.args[i]) if i < len(self.args) else None
        return m.group(2) if m else ""


def _split_args(s: str) -> list:
    out, cur, depth, quote, esc = [], [], 0, False, False
    for ch in s:
        if quote:
            cur.append(ch)
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                quote = False
            continue
        if ch == '"':
            quote = True
        elif ch in "[{(<":
            depth += 1
        elif ch in "]})>":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if cur or out:
        out.append("".join(cur).strip())
    return out


def _unquote(arg: str) -> str:
    """A path argument: ``"..."`` decoded (strace's C escapes), else the text as is."""
    if arg.endswith("..."):
        arg = arg[:-3]
    if not (arg.startswith('"') and arg.endswith('"')):
        return arg
    body = arg[1:-1]
    return body.encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1").decode(
        "utf-8", "replace")


def parse(text: str) -> list:
    """The calls of an ``strace -f -y -o`` log, in order; unfinished calls joined with their
    resumption."""
    pending = {}
    calls = []
    for raw in text.splitlines():
        line = raw.rstrip()
        m = re.match(r"^(\d+)\s+(.*)$", line)
        if not m:
            continue
        pid, body = m.group(1), m.group(2)
        if body.startswith(("+++", "---")):
            continue
        if body.endswith("<unfinished ...>"):
            pending[pid] = body[: -len("<unfinished ...>")].rstrip()
            continue
        r = re.match(r"^<\.\.\. \w+ resumed>\s?(.*)$", body)
        if r:
            body = pending.pop(pid, "") + r.group(1)
        m = LINE.match(f"{pid} {body}")
        if not m:
            continue
        ret = m.group("ret")
        rest = m.group("rest")
        ret_path = ""
        mp = re.match(r"^<(.*?)>", rest)
        if mp:
            ret_path = mp.group(1)
        calls.append(Call(len(calls), int(pid), m.group("name"), _split_args(m.group("args")),
                          -1 if ret == "?" else int(ret), ret_path, line))
    return calls


def _path_args(c: Call) -> list:
    """The (absolute) paths a path-taking call names, in argument order."""
    if c.name in ("link", "rename", "unlink", "mkdir"):
        idx = [0, 1] if c.name in ("link", "rename") else [0]
    elif c.name in ("linkat", "renameat", "renameat2"):
        idx = [1, 3]
    elif c.name in ("unlinkat", "mkdirat"):
        idx = [1]
    else:
        return []
    out = []
    for i in idx:
        p = _unquote(c.args[i])
        if not os.path.isabs(p):
            base = c.fd_path(i - 1) if i >= 1 else ""
            p = os.path.normpath(os.path.join(base, p))
        out.append(p)
    return out


@dataclass
class Publish:
    index: int
    pid: int
    how: str  # "link" or "rename"
    src: str
    dst: str


def publishes(calls: list, root: str) -> list:
    """Successful links and renames that put a file under its name in the store (not tmp/)."""
    root = root.rstrip("/")
    out = []
    for c in calls:
        if c.ret != 0 or c.name not in ("link", "linkat", "rename", "renameat", "renameat2"):
            continue
        src, dst = _path_args(c)
        if dst.startswith(root + "/") and not dst.startswith(root + "/tmp/"):
            out.append(Publish(c.index, c.pid, "link" if "link" in c.name else "rename", src, dst))
    return out


def violations(calls: list, root: str) -> list:
    """Every break of the publish order in the trace, as sentences (empty: the order holds).

    For every published file: it was written under ``<root>/tmp/``; an fsync (or fdatasync) of
    the temp file came after its last write and before the link or rename; and an fsync of the
    destination's directory came after it, before the same process published anything else.
    Every directory the store created was fsynced in its parent the same way. No file of the
    store outside ``tmp/`` was written in place.
    """
    root = root.rstrip("/")
    problems = []
    pubs = publishes(calls, root)
    # Directories the store created count as publishes of their parent's entry.
    made = [(c.index, c.pid, _path_args(c)[0]) for c in calls
            if c.ret == 0 and c.name in ("mkdir", "mkdirat") and _path_args(c)[0].startswith(root + "/")]
    by_pid = {}
    for p in pubs:
        by_pid.setdefault(p.pid, []).append(p.index)
    for idx, pid, _ in made:
        by_pid.setdefault(pid, []).append(idx)
    for v in by_pid.values():
        v.sort()

    def next_publish(pid: int, after: int) -> int:
        later = [i for i in by_pid.get(pid, []) if i > after]
        return later[0] if later else len(calls)

    def dir_synced(pid: int, directory: str, after: int) -> bool:
        until = next_publish(pid, after)
        return any(
            c.name in ("fsync", "fdatasync") and c.ret == 0 and c.pid == pid and c.fd_path() == directory
            for c in calls[after + 1 : until]
        )

    for p in pubs:
        where = f"{p.how} {p.src} -> {p.dst} (call {p.index})"
        if not p.src.startswith(root + "/tmp/"):
            problems.append(f"{where}: published from outside tmp/")
            continue
        opened = [c.index for c in calls[: p.index] if c.name == "openat" and c.ret >= 0 and c.ret_path == p.src]
        if not opened:
            problems.append(f"{where}: the temp file was never opened in the trace")
            continue
        start = opened[-1]
        writes = [c.index for c in calls[start : p.index] if c.name == "write" and c.fd_path() == p.src]
        last_write = writes[-1] if writes else start
        synced = [c.index for c in calls[last_write + 1 : p.index]
                  if c.name in ("fsync", "fdatasync") and c.ret == 0 and c.fd_path() == p.src]
        if not synced:
            problems.append(f"{where}: the temp file was not fsynced after its last write and before the {p.how}")
        if not dir_synced(p.pid, os.path.dirname(p.dst), p.index):
            problems.append(f"{where}: {os.path.dirname(p.dst)} was not fsynced after the {p.how} "
                            "(before the next publish)")
    for idx, pid, path in made:
        if not dir_synced(pid, os.path.dirname(path), idx):
            problems.append(f"mkdir {path} (call {idx}): its parent was not fsynced after it")
    for c in calls:
        if c.name == "write" and c.ret > 0:
            p = c.fd_path()
            if p.startswith(root + "/") and not p.startswith(root + "/tmp/"):
                problems.append(f"write to {p} in place (call {c.index})")
    return problems
