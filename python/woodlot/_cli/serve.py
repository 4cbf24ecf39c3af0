"""``woodlot serve``: the HTTP scoring server (MLflow's scoring protocol) over a store reference.

It runs ``woodlot.serve(..., block=True)``: the server is Rust, follows every promote and
rollback of ``--ref`` within ``--poll-seconds`` plus the new version's load time, and on
SIGTERM or SIGINT stops accepting, lets requests in flight finish and exits 0. Notices (swaps,
refusals, failed checks, recoveries) go to stderr through the ``woodlot`` logger; the line
``listening on http://HOST:PORT`` goes to stdout once the port is bound.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Callable

from .._serve import DEFAULT_MAX_BODY_BYTES, serve
from .._store import VersionStore
from . import _exit
from ._common import open_store, store_argument

__all__ = ["add_parser"]

EXAMPLE = """example:
  woodlot serve --store models --port 8080 &
  curl -s localhost:8080/invocations -H 'Content-Type: application/json' \\
       -d '{"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}'
  # {"predictions":[1]}   (add ?output=proba for probabilities; text/csv works too)
  curl -s localhost:8080/ping; curl -s localhost:8080/version; curl -s localhost:8080/metrics

  # guarded: v2 on probation against the active version; labels posted later by request id
  woodlot serve --store models --guard v2 --guard-min-outcomes 500 &
  curl -s localhost:8080/invocations -H 'x-request-id: r1' -d '{"instances": [[1.0, 2.0]]}'
  # {"predictions":[1],"request_ids":["r1"]}
  curl -s localhost:8080/feedback -d '{"request_ids": ["r1"], "y_true": [0]}'
  curl -s localhost:8080/guard

endpoints: POST /invocations, GET /ping (503 until a verified model is served), GET /version,
GET /metrics (Prometheus), GET /guard, POST /feedback (the only one that writes to the store).
Responses carry x-woodlot-version and x-request-id headers. A server of --ref active follows
the store's running guard (started here with --guard, or by store.guard(...) anywhere).
SIGTERM or SIGINT: stop accepting, finish requests in flight, flush the guard's log, exit 0."""


def _ranged(kind: Callable[[str], Any], low: float, high: float, what: str) -> Callable[[str], Any]:
    """An argparse ``type`` that parses with ``kind`` and checks the range (exit 2 if not)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {low:g}..{high:g}")
        return value

    return parse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``woodlot serve``."""
    p = subparsers.add_parser(
        "serve",
        help="serve a store reference over HTTP (MLflow's scoring protocol), following every move",
        description="Serve a store reference over HTTP with MLflow's scoring protocol, following\n"
        "every promote and rollback of --ref within --poll-seconds plus the new version's load\n"
        "time; with --guard, score through a deployment guard that rolls back on evidence.",
        epilog=EXAMPLE + "\n\n" + _exit.EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    store_argument(p)
    p.add_argument("--ref", default="active", help="what to serve: active (default), an alias, latest or vN")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_ranged(int, 0, 65535, "a port"), default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument(
        "--poll-seconds",
        type=_ranged(float, 0.001, 86400, "a number of seconds"),
        default=1.0,
        help="how often the store is checked for moves (default 1.0)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=_ranged(int, 1, 2**32 - 1, "a byte count"),
        default=DEFAULT_MAX_BODY_BYTES,
        help=f"largest request body; larger ones get a 413 (default {DEFAULT_MAX_BODY_BYTES})",
    )
    p.add_argument("--workers", type=_ranged(int, 1, 1024, "a thread count"), default=2, help="threads that parse and score (default 2)")
    p.add_argument(
        "--max-connections", type=_ranged(int, 1, 1 << 20, "a count"), default=1024, help="connections served at once (default 1024)"
    )
    seconds = _ranged(float, 0.001, 86400, "a number of seconds")
    p.add_argument("--header-timeout", type=seconds, default=10.0, help="seconds a client may take to send its headers (default 10)")
    p.add_argument("--body-timeout", type=seconds, default=30.0, help="seconds a client may take to send its body; 408 after (default 30)")
    p.add_argument("--drain-timeout", type=seconds, default=30.0, help="seconds SIGTERM waits for requests in flight (default 30)")
    g = p.add_argument_group("guarded deployment")
    g.add_argument("--guard", metavar="REF", help="start (or resume) a guard of this candidate against the active version")
    g.add_argument("--guard-mode", choices=("probation", "shadow", "canary"), help="how the candidate meets traffic (default probation)")
    g.add_argument("--guard-metric", choices=("log_loss", "accuracy"), help="what is compared (default log_loss)")
    g.add_argument(
        "--guard-alpha", type=_ranged(float, 1e-12, 0.5, "a probability"), help="false-rollback probability promised (default 0.05)"
    )
    g.add_argument("--guard-margin", type=_ranged(float, 0, 1e6, "a number"), help="tolerated loss difference (default 0)")
    g.add_argument(
        "--guard-min-outcomes", type=_ranged(int, 1, 2**53, "a count"), help="outcomes before a candidate may be confirmed (default 200)"
    )
    g.add_argument("--canary-fraction", type=_ranged(float, 0, 1, "a fraction"), help="canary: share of requests the candidate answers (default 0.1)")
    g.add_argument("--auto-promote", action="store_true", default=None, help="shadow or canary: promote once confirmed")
    p.set_defaults(func=run)


_GUARD_FLAGS = ("guard_mode", "guard_metric", "guard_alpha", "guard_margin", "guard_min_outcomes", "canary_fraction", "auto_promote")


def _guard_arguments(args: argparse.Namespace) -> dict:
    """The guard's keyword arguments; guard flags without ``--guard`` are a usage error."""
    given = {k: getattr(args, k) for k in _GUARD_FLAGS if getattr(args, k) is not None}
    if args.guard is None:
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise ValueError(f"{flags} only apply with --guard REF")
        return {}
    if args.ref != "active":
        raise ValueError(f"--guard compares a candidate with the active version: serve --ref active, not {args.ref!r}")
    mode = given.get("guard_mode", "probation")
    if "canary_fraction" in given and mode != "canary":
        raise ValueError("--canary-fraction applies to --guard-mode canary")
    if mode == "canary" and given.get("canary_fraction", 0.1) in (0, 1):
        raise ValueError("--canary-fraction must lie strictly between 0 and 1 for a canary")
    if given.get("auto_promote") and mode == "probation":
        raise ValueError("--auto-promote applies to --guard-mode shadow or canary (a probation candidate is already active)")
    return {"guard": args.guard, **given}


def run(args: argparse.Namespace) -> int:
    guard = _guard_arguments(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    store = open_store(args) if "://" in (args.store or "") else _existing_store(args)
    server = serve(
        store,
        ref=args.ref,
        host=args.host,
        port=args.port,
        poll_seconds=args.poll_seconds,
        max_body_bytes=args.max_body_bytes,
        max_connections=args.max_connections,
        workers=args.workers,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        drain_timeout=args.drain_timeout,
        block=False,
        **guard,
    )
    status = server.status()
    serving = status.version or "nothing yet (503 until a version is served)"
    print(f"woodlot serve: listening on {server.url}, following {args.ref} of {store.path}: serving {serving}", flush=True)
    if status.guard is not None and status.guard.running:
        g = status.guard
        print(f"woodlot serve: guard {g.guard}: {g.mode} of {g.candidate} against {g.baseline} ({g.outcomes} outcomes so far)", flush=True)
    elif status.guard is not None and guard:
        g = status.guard
        print(f"woodlot serve: guard {g.guard} of {g.candidate} was already decided ({g.decision}); not starting another "
              "(start one with store.guard(...) to guard it again)", flush=True)
    server.serve_forever()
    print("woodlot serve: stopped", flush=True)
    return _exit.OK


def _existing_store(args: argparse.Namespace) -> VersionStore:
    """The local store named by ``--store``; a missing directory is an error, not a new store."""
    if args.store and not os.path.isdir(args.store):
        raise FileNotFoundError(f"no store at {args.store!r}: give the directory of an existing store or an s3:// URL")
    return open_store(args)
