"""``woodlot guard status`` and ``woodlot guard stop``: the store's guarded deployment.

A guard (started by ``store.guard(...)`` or ``woodlot serve --guard REF``) lives in the store's
history, so these read and act on it from any shell, while servers score through it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, Optional

from .._guard import GuardStatus, open_guard
from . import _exit
from ._common import common_arguments, new_command, open_store
from ._output import fmt_number, paint, print_json, use_colour

__all__ = ["add_parser", "run_status", "run_stop", "status_json"]


def status_json(s: GuardStatus) -> Dict[str, Any]:
    """The stable JSON shape of a guard's status (``woodlot guard status --json``)."""
    return {
        "guard": s.guard,
        "mode": s.mode,
        "metric": s.metric,
        "candidate": s.candidate,
        "baseline": s.baseline,
        "active": s.active,
        "running": s.running,
        "alpha": s.alpha,
        "margin": s.margin,
        "min_outcomes": s.min_outcomes,
        "outcomes": s.outcomes,
        "outcomes_recorded": s.outcomes_recorded,
        "outcomes_unknown": s.outcomes_unmatched,
        "duplicate_outcomes": s.duplicate_outcomes,
        "predictions_logged": s.predictions_logged,
        "estimate": s.estimate,
        "interval": list(s.interval),
        "e_value": s.e_value,
        "threshold": s.threshold,
        "test": s.test,
        "discordant": list(s.discordant),
        "verdict": s.verdict,
        "decision": s.decision,
        "decision_reason": s.decision_reason,
    }


def add_parser(subparsers: "argparse._SubParsersAction") -> None:
    p = new_command(
        subparsers,
        "guard",
        "show or stop the store's guarded deployment",
        "A guard watches a candidate version on live traffic beside the active one (started by\n"
        "store.guard(...) or woodlot serve --guard REF) and rolls it back on evidence.\n"
        "status shows the newest guard (or --id N): mode, outcomes seen, the estimate with its\n"
        "interval, the e-value and the decision; no guard at all exits with the not-found code.\n"
        "stop ends the running guard without a verdict (recorded as 'stopped'); nothing running\n"
        "exits with the refused code.\n\n"
        'JSON: the status {"guard", "mode", "candidate", "baseline", "running", "outcomes",\n'
        '"estimate", "interval", "e_value", "threshold", "discordant", "decision", ...}.',
        ["woodlot guard status --store models", "woodlot guard status --json", 'woodlot guard stop --reason "label job broken"'],
    )
    sub = p.add_subparsers(dest="guard_command", metavar="ACTION")
    sub.required = True
    s = sub.add_parser(
        "status",
        help="the newest guard's status",
        description="The newest guard's status (or guard --id N's).",
        epilog="example:\n  woodlot guard status --json --store models",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--id", type=int, metavar="N", help="the guard (its guard_started event number; default: the newest)")
    common_arguments(s)
    s.set_defaults(func=run_status)
    t = sub.add_parser(
        "stop",
        help="stop the running guard without a verdict",
        description="Stop the running guard without a verdict; the active version stays as it is.",
        epilog='example:\n  woodlot guard stop --reason "label job broken" --store models',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--reason", help="why (kept in the history)")
    common_arguments(t)
    t.set_defaults(func=run_stop)


def _newest(store: Any, running_only: bool) -> Optional[int]:
    records = [g for g in store.guards() if not running_only or g["decision"] is None]
    return None if not records else int(records[-1]["spec"]["guard"])


def _show(s: GuardStatus, as_json: bool) -> None:
    if as_json:
        print_json(status_json(s))
        return
    colour = use_colour()
    state = paint("running", "green", colour) if s.running else paint(str(s.decision), "yellow", colour)
    low, high = s.interval
    print(f"guard {s.guard}: {s.mode} of {s.candidate} against {s.baseline} on {s.metric}: {state}")
    print(f"  active {s.active}; {s.predictions_logged} predictions logged, {s.outcomes} outcomes joined "
          f"({s.outcomes_unmatched} unknown, {s.duplicate_outcomes} duplicate), min {s.min_outcomes}")
    print(f"  estimate {fmt_number(s.estimate)} in [{fmt_number(low)}, {fmt_number(high)}], "
          f"e-value {fmt_number(s.e_value)} (threshold {fmt_number(s.threshold)}, {s.test}), "
          f"discordant {s.discordant[0]}/{s.discordant[1]}")
    if s.decision_reason:
        print(f"  {s.decision_reason}")


def run_status(args: argparse.Namespace) -> int:
    store = open_store(args)
    gid = args.id if args.id is not None else _newest(store, running_only=False)
    if gid is None:
        print("woodlot guard status: this store has no guard (start one with store.guard(...) or woodlot serve --guard REF)",
              file=sys.stderr)
        return _exit.NOT_FOUND
    with open_guard(store, gid) as g:
        _show(g.status(), args.json)
    return _exit.OK


def run_stop(args: argparse.Namespace) -> int:
    store = open_store(args)
    gid = _newest(store, running_only=True)
    if gid is None:
        print("woodlot guard stop: no guard is running in this store", file=sys.stderr)
        return _exit.REFUSED
    with open_guard(store, gid) as g:
        _show(g.stop(args.reason), args.json)
    return _exit.OK
