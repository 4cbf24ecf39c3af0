"""Notebook views (``_repr_html_``) of the store's objects, in scikit-learn's visual language.

Jupyter calls ``_repr_html_`` on the last value of a cell; these functions build that HTML for
``VersionStore``, ``ModelVersion``, ``Comparison``, ``Decision``, the history and ``LiveModel``. Like
scikit-learn's estimator view, each view is one self-contained block: a scoped ``<style>``
(no external asset, no script), colours from Jupyter's own theme variables with light and dark
fallbacks (``prefers-color-scheme``), collapsible sections as native ``<details>``, and a
plain-text fallback for renderers that drop styles.

Every string that came from a user or the store (tags, descriptions, reasons, alias names,
feature names, paths, hosts) goes through :func:`html.escape`; nothing is trusted. The module
imports nothing from woodlot: it reads the objects' public attributes, so the records module can
import it without a circle.
"""

from __future__ import annotations

import html
import itertools
import json
import math
from typing import Any, Dict, Iterable, List, Optional, Sequence

__all__ = ["store_html", "version_html", "comparison_html", "decision_html", "history_html", "live_html"]

_counter = itertools.count(1)

# Colours: Jupyter's variables first (they follow its light/dark theme), then ours. The dark
# fallbacks apply where the page says it prefers dark and Jupyter's variables are absent
# (VS Code, a static export viewed at night).
_CSS = """
#{id} {{
  --wl-fg: var(--jp-content-font-color1, var(--vscode-editor-foreground, #1b1b1b));
  --wl-bg: var(--jp-layout-color0, var(--vscode-editor-background, #ffffff));
  --wl-muted: var(--jp-content-font-color2, #5c5c5c);
  --wl-border: var(--jp-border-color2, #d6d6d6);
  --wl-head: var(--jp-layout-color2, #f0f8ff);
  --wl-accent: #2a7ab0;
  --wl-good-bg: #e6f4ea; --wl-good-fg: #146c2e;
  --wl-bad-bg: #fde8e8; --wl-bad-fg: #a11a1a;
  --wl-warn-bg: #fff4d6; --wl-warn-fg: #7a5200;
  --wl-alias-bg: #e8eefc; --wl-alias-fg: #1d3f8f;
  color: var(--wl-fg); background: var(--wl-bg);
  font-family: var(--jp-ui-font-family, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif);
  font-size: 13px; line-height: 1.4; display: inline-block; max-width: 100%; overflow-x: auto;
}}
@media (prefers-color-scheme: dark) {{
  #{id} {{
    --wl-fg: var(--jp-content-font-color1, var(--vscode-editor-foreground, #e6e6e6));
    --wl-bg: var(--jp-layout-color0, var(--vscode-editor-background, #1e1e1e));
    --wl-muted: var(--jp-content-font-color2, #a8a8a8);
    --wl-border: var(--jp-border-color2, #4a4a4a);
    --wl-head: var(--jp-layout-color2, #26323d);
    --wl-good-bg: #17361f; --wl-good-fg: #8fdca4;
    --wl-bad-bg: #3d1717; --wl-bad-fg: #ff9c9c;
    --wl-warn-bg: #3a2e0c; --wl-warn-fg: #f3cf73;
    --wl-alias-bg: #1c2846; --wl-alias-fg: #a9c1ff;
  }}
}}
#{id} .wl-box {{ border: 1px dashed var(--wl-border); border-radius: 0.25em; padding: 0.5em 0.75em; }}
#{id} .wl-title {{ font-weight: 600; font-size: 1.05em; margin-bottom: 0.35em; }}
#{id} .wl-sub {{ color: var(--wl-muted); font-weight: 400; }}
#{id} table {{ border-collapse: collapse; margin: 0.25em 0; }}
#{id} th, #{id} td {{ border: 1px solid var(--wl-border); padding: 0.2em 0.55em; text-align: left;
  vertical-align: top; color: var(--wl-fg); background: transparent; }}
#{id} th {{ background: var(--wl-head); font-weight: 600; }}
#{id} td.wl-num {{ text-align: right; font-variant-numeric: tabular-nums; }}
#{id} tr.wl-active td {{ background: var(--wl-good-bg); }}
#{id} td.wl-best {{ font-weight: 700; color: var(--wl-good-fg); }}
#{id} .wl-badge {{ display: inline-block; border-radius: 0.8em; padding: 0 0.55em; margin: 0 0.2em 0.1em 0;
  font-size: 0.85em; font-weight: 600; white-space: nowrap; }}
#{id} .wl-badge-active, #{id} .wl-badge-promoted, #{id} .wl-badge-best {{ background: var(--wl-good-bg); color: var(--wl-good-fg); }}
#{id} .wl-badge-refused, #{id} .wl-badge-deleted, #{id} .wl-badge-rollback {{ background: var(--wl-bad-bg); color: var(--wl-bad-fg); }}
#{id} .wl-badge-alias {{ background: var(--wl-alias-bg); color: var(--wl-alias-fg); }}
#{id} .wl-badge-tag {{ background: var(--wl-head); color: var(--wl-fg); font-weight: 400; }}
#{id} .wl-badge-promote {{ background: var(--wl-good-bg); color: var(--wl-good-fg); }}
#{id} .wl-badge-save, #{id} .wl-badge-compare {{ background: var(--wl-head); color: var(--wl-fg); }}
#{id} .wl-badge-alias-event, #{id} .wl-badge-unalias {{ background: var(--wl-alias-bg); color: var(--wl-alias-fg); }}
#{id} details > summary {{ cursor: pointer; color: var(--wl-accent); margin: 0.25em 0; }}
#{id} code {{ font-family: var(--jp-code-font-family, monospace); font-size: 0.95em; }}
#{id} .wl-muted {{ color: var(--wl-muted); }}
#{id} .wl-fallback {{ display: none; }}
#{id} .wl-nowrap {{ white-space: nowrap; }}
"""


def _e(value: Any) -> str:
    """Escape one value for HTML text or an attribute (quotes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "&ndash;"
    if isinstance(value, float):
        return _e(f"{value:.{digits}f}")
    return _e(value)


def _badge(text: str, kind: str) -> str:
    return f'<span class="wl-badge wl-badge-{_e(kind)}">{_e(text)}</span>'


def _wrap(title: str, subtitle: str, body: str, text: str) -> str:
    """One view: scoped style, a titled box, and the plain repr for renderers without CSS
    (shown only there: the style hides it)."""
    ident = f"woodlot-view-{next(_counter)}"
    return (
        f'<div id="{ident}" class="woodlot-view"><style>{_CSS.format(id=ident)}</style>'
        f'<pre class="wl-fallback">{_e(text)}</pre>'
        f'<div class="wl-box"><div class="wl-title">{title} <span class="wl-sub">{subtitle}</span></div>'
        f"{body}</div></div>"
    )


def _table(headers: Sequence[str], rows: Iterable[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _kv(pairs: Dict[str, Any]) -> str:
    """A small "key = value" list (tags, metrics) as escaped badges."""
    if not pairs:
        return '<span class="wl-muted">&ndash;</span>'
    out = []
    for k, v in sorted(pairs.items(), key=lambda kv: str(kv[0])):
        if isinstance(v, float):
            v = f"{v:.4g}"
        elif not isinstance(v, str):
            v = json.dumps(v, sort_keys=True, default=str)
        out.append(_badge(f"{k}={v}" if v != "" else str(k), "tag"))
    return "".join(out)


def _date(iso: str) -> str:
    return f'<span class="wl-nowrap">{_e(str(iso).replace("T", " ")[:19])}</span>'


# -- the views ----------------------------------------------------------------------------------


def store_html(path: str, versions: Sequence[Any], active: Optional[str], aliases: Dict[str, str], text: str) -> str:
    """The store: every version with its markers (active, aliases), metrics, tags and dates."""
    rows = []
    for v in versions:
        marks = [_badge("active", "active")] if v.name == active else []
        marks += [_badge(a, "alias") for a, t in sorted(aliases.items()) if t == v.name]
        cls = ' class="wl-active"' if v.name == active else ""
        rows.append(
            f"<tr{cls}><td><b>{_e(v.name)}</b></td><td>{''.join(marks)}</td><td>{_date(v.created)}</td>"
            f'<td class="wl-num">{_e(v.n_trees)}</td><td class="wl-num">{_e(v.n_features)}</td>'
            f'<td class="wl-num">{_e(f"{v.size:,}")}</td><td>{_kv(dict(v.metrics))}</td>'
            f"<td>{_kv(dict(v.tags))}</td><td>{_e(v.description or '')}</td></tr>"
        )
    if rows:
        body = _table(["version", "markers", "created (UTC)", "trees", "features", "bytes", "metrics", "tags",
                       "description"], rows)
    else:
        body = '<span class="wl-muted">no versions yet</span>'
    sub = f"{_e(path)} &middot; {len(versions)} versions &middot; active {_e(active or 'none')}"
    return _wrap("VersionStore", sub, body, text)


def version_html(v: Any, text: str) -> str:
    """One version: identity, lineage, model, training data, the user's notes, parameters."""
    rows = [
        ("created", f"{_date(v.created)} UTC by {_e(v.user)}@{_e(v.host)}"),
        ("parent", _e("none" if v.parent is None else f"v{v.parent}")),
        ("model", _e(f"{v.kind}: {v.n_trees} trees, {v.n_features} features, {v.n_classes} classes")),
        ("classes", _e(", ".join(str(c) for c in (v.classes or [])))),
        ("trained on", f"{_e(v.n_samples)} rows, fingerprint <code>{_e(v.training_fingerprint)}</code>"),
        ("fit", _e(f"{v.fit_seconds:.3f} s, woodlot {v.library_version}")),
        ("file", f"{_e(f'{v.size:,}')} bytes, BLAKE3 <code>{_e(v.digest)}</code>"),
        ("description", _e(v.description or "")),
        ("tags", _kv(dict(v.tags))),
        ("metrics", _kv(dict(v.metrics))),
    ]
    body = "<table><tbody>" + "".join(f"<tr><th>{_e(k)}</th><td>{val}</td></tr>" for k, val in rows) + "</tbody></table>"
    params = dict(v.params)
    if params:
        prow = "".join(f"<tr><td>{_e(k)}</td><td><code>{_e(json.dumps(val, default=str))}</code></td></tr>"
                       for k, val in sorted(params.items()))
        body += f"<details><summary>parameters ({len(params)})</summary><table><tbody>{prow}</tbody></table></details>"
    names = v.feature_names or []
    if names:
        body += (f"<details><summary>feature names ({len(names)})</summary>"
                 f"{_e(', '.join(str(n) for n in names))}</details>")
    return _wrap("ModelVersion", _e(v.name), body, text)


_LOWER_IS_BETTER = {"log_loss"}
_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "log_loss")


def comparison_html(cmp: Any, pairwise: Sequence[Any], text: str) -> str:
    """Metrics per version (the best value of each column highlighted, the best version
    marked), the pairwise tests, and the confusion matrices (collapsed)."""
    best_value: Dict[str, float] = {}
    for k in _METRICS:
        values = [cmp.metrics[v][k] for v in cmp.versions if not math.isnan(cmp.metrics[v][k])]
        if values:
            best_value[k] = min(values) if k in _LOWER_IS_BETTER else max(values)
    rows = []
    for name in cmp.versions:
        m = cmp.metrics[name]
        marks = ([_badge("best", "best")] if name == cmp.best else []) + (
            [_badge("active", "active")] if name == cmp.active else [])
        cells = "".join(
            f'<td class="wl-num{" wl-best" if best_value.get(k) == m[k] else ""}">{_num(m[k])}</td>' for k in _METRICS
        )
        rows.append(f"<tr><td><b>{_e(name)}</b></td><td>{''.join(marks)}</td>{cells}</tr>")
    body = _table(["version", "", "accuracy", "balanced accuracy", "macro F1", "log loss"], rows)
    if pairwise:
        prow = []
        for p in pairwise:
            prow.append(
                f"<tr><td>{_e(p.a)} vs {_e(p.b)}</td><td class=\"wl-num\">{_e(p.disagreements)}</td>"
                f'<td class="wl-num">{_e(len(p.a_only_correct))} / {_e(len(p.b_only_correct))}</td>'
                f'<td class="wl-num">{_num(p.accuracy_diff)}</td>'
                f'<td class="wl-num">[{_num(p.ci_low)}, {_num(p.ci_high)}]</td>'
                f'<td class="wl-num">{_num(p.mcnemar_p, 4)}</td></tr>'
            )
        body += "<div class=\"wl-sub\">pairwise, on the same rows</div>" + _table(
            ["pair", "disagreements", "only a / only b right", "accuracy a \u2212 b", "95% bootstrap CI",
             "McNemar exact p"], prow)
    labels = [str(label) for label in cmp.labels]
    mats = []
    for name in cmp.versions:
        cm = cmp.metrics[name]["confusion_matrix"]
        head = "".join(f"<th>{_e(label)}</th>" for label in labels)
        mrows = "".join(
            f"<tr><th>{_e(labels[i])}</th>" + "".join(f'<td class="wl-num">{int(c)}</td>' for c in row) + "</tr>"
            for i, row in enumerate(cm.tolist())
        )
        mats.append(f'<div style="display:inline-block;margin-right:1em"><div><b>{_e(name)}</b> '
                    f'<span class="wl-muted">(rows: true, columns: predicted)</span></div>'
                    f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{mrows}</tbody></table></div>")
    body += f"<details><summary>confusion matrices</summary>{''.join(mats)}</details>"
    sub = f"{len(cmp.versions)} versions on {_e(cmp.n_rows)} rows &middot; data <code>{_e(cmp.eval_fingerprint[:12])}</code>"
    return _wrap("Comparison", sub, body, text)


def decision_html(d: Any, text: str) -> str:
    """What ``promote_if_better`` decided: the verdict, both values, the thresholds, why."""
    verdict = _badge("promoted", "promoted") if d.promoted else _badge("refused", "refused")
    rows = [
        ("candidate", _e(d.candidate)),
        ("active before", _e(d.active_before or "none")),
        ("active after", _e(d.active_after or "none")),
        (f"{d.metric} (candidate / active)", f"{_num(d.candidate_value)} / {_num(d.active_value)}"),
        ("delta (needed)", f"{_num(d.delta)} ({_num(d.min_delta)})"),
        ("McNemar p (alpha)", f"{_num(d.p_value)} ({_num(d.alpha)})"),
        ("reason", _e(d.reason)),
        ("event", _e(f"#{d.event}")),
    ]
    body = verdict + "<table><tbody>" + "".join(
        f"<tr><th>{_e(k)}</th><td>{val}</td></tr>" for k, val in rows) + "</tbody></table>"
    return _wrap("Decision", _e(d.candidate), body, text)


def history_html(events: List[Any], text: str) -> str:
    """The history, oldest first: each event's kind, version, the active version after it,
    who, when and why."""
    rows = []
    for e in events:
        kind = "alias-event" if e.kind == "alias" else e.kind
        rows.append(
            f'<tr><td class="wl-num">#{_e(e.seq)}</td><td>{_date(e.time)}</td><td>{_badge(e.kind, kind)}</td>'
            f"<td>{_e(e.version or '')}</td><td>{_e(e.active or '')}</td>"
            f"<td>{''.join(_badge(f'{a}→{t}', 'alias') for a, t in sorted(e.aliases.items()))}</td>"
            f"<td>{_e(e.user)}@{_e(e.host)}</td><td>{_e(e.reason or '')}</td></tr>"
        )
    body = _table(["seq", "time (UTC)", "event", "version", "active after", "aliases", "by", "reason"], rows) \
        if rows else '<span class="wl-muted">no events yet</span>'
    return _wrap("History", f"{len(events)} events", body, text)


def live_html(path: str, status: Any, text: str) -> str:
    """A live model: what it follows and serves, how fresh, and what it refused."""
    if status.closed:
        body = '<span class="wl-muted">closed</span>'
    else:
        state = _badge("serving", "active") if not status.last_error else _badge("last check failed", "refused")
        rows = [
            ("follows", _e(status.reference)),
            ("serving", f"{_e(status.version or 'none')} (load #{_e(status.generation)})"),
            ("target", _e(status.target or "none")),
            ("staleness", _e(f"{status.staleness_seconds:.1f} s (polls every {status.poll_seconds:g} s)")),
            ("swaps / refused", _e(f"{status.swaps} / {status.refused_swaps}")),
            ("checks / failed", _e(f"{status.checks} / {status.failed_checks}")),
            ("last error", _e(status.last_error or "")),
        ]
        body = state + "<table><tbody>" + "".join(
            f"<tr><th>{_e(k)}</th><td>{val}</td></tr>" for k, val in rows) + "</tbody></table>"
    return _wrap("LiveModel", _e(path), body, text)
