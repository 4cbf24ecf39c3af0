"""The notebook views (``_repr_html_``), read back with a real HTML parser (the standard
library's): well formed, no markup from user strings (every hostile string comes back as
text, verbatim), the markers and highlights they promise, and both colour themes in the style.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from woodlot import RandomForestClassifier

from .conftest import HOSTILE

VOID = {"br", "img", "hr", "meta", "link", "input", "col", "wbr", "source", "area", "base", "embed", "track"}


class Page(HTMLParser):
    """Every element (tag, attributes, class list, text inside), checking that tags nest."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list = []
        self.stack: list = []
        self.text: list = []
        self.errors: list = []
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {[e['tag'] for e in self.stack]}")

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "classes": (dict(attrs).get("class") or "").split(), "text": []}
        self.elements.append(el)
        if tag not in VOID:
            self.stack.append(el)

    def handle_endtag(self, tag):
        if tag in VOID:  # scikit-learn's own view writes </br>; browsers take it as <br>
            return
        if not self.stack or self.stack[-1]["tag"] != tag:
            self.errors.append(f"unexpected </{tag}>")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)
        for el in self.stack:
            el["text"].append(data)

    def tags(self, name):
        return [e for e in self.elements if e["tag"] == name]

    def with_class(self, cls):
        return [e for e in self.elements if cls in e["classes"]]


def parse(markup: str) -> Page:
    page = Page(markup)
    assert page.errors == [], page.errors
    # Only the tags the views use: nothing a user string could have smuggled in.
    assert {e["tag"] for e in page.elements} <= {
        "div", "style", "pre", "span", "b", "table", "thead", "tbody", "tr", "th", "td", "details", "summary", "code"}
    for e in page.elements:
        assert not any(a.startswith("on") for a in e["attrs"]), e
    assert len(page.tags("style")) == 1
    return page


def text_of(el) -> str:
    return "".join(el["text"])


def test_store_view_marks_active_and_aliases_and_escapes(hostile_store):
    store = hostile_store[0]
    page = parse(store._repr_html_())
    rows = [r for r in page.tags("tr") if "td" in {e["tag"] for e in page.elements}]
    body = "".join(page.text)
    assert HOSTILE in body  # the tag, the description, the metric name: as text
    assert "store <i>" in body  # the path too
    active_rows = page.with_class("wl-active")
    assert len(active_rows) == 1 and text_of(active_rows[0]).startswith("v1")
    assert [text_of(b) for b in page.with_class("wl-badge-active")] == ["active"]
    assert [text_of(b) for b in page.with_class("wl-badge-alias")] == ["champion"]
    assert "baseline" in body and "created" in body and rows


def test_style_follows_jupyter_themes_and_prefers_color_scheme(hostile_store):
    page = parse(hostile_store[0]._repr_html_())
    css = text_of(page.tags("style")[0])
    assert "@media (prefers-color-scheme: dark)" in css
    assert "var(--jp-layout-color0" in css and "var(--jp-content-font-color1" in css
    assert "url(" not in css and "@import" not in css  # no external asset
    ident = page.elements[0]["attrs"]["id"]
    assert css.count(f"#{ident}") > 10  # scoped to this view only


def test_version_view(hostile_store):
    store = hostile_store[0]
    page = parse(store.get("v1")._repr_html_())
    body = "".join(page.text)
    assert body.count(HOSTILE) >= 4  # description, tag key and value, metric name, feature name
    assert store.get("v1").digest in body
    summaries = [text_of(s) for s in page.tags("summary")]
    assert any(s.startswith("parameters") for s in summaries)
    assert any(s.startswith("feature names") for s in summaries)


def test_comparison_view_highlights_the_best(hostile_store):
    cmp = hostile_store[1]
    page = parse(cmp._repr_html_())
    best = [text_of(b) for b in page.with_class("wl-badge-best")]
    assert best == ["best"]
    best_row = next(r for r in page.tags("tr") if "best" in text_of(r) and text_of(r).startswith(cmp.best))
    assert best_row
    # Each metric column's best value is highlighted (log loss: the lowest).
    highlighted = [text_of(c) for c in page.with_class("wl-best")]
    assert f"{min(cmp.metrics[v]['log_loss'] for v in cmp.versions):.4f}" in highlighted
    assert f"{max(cmp.metrics[v]['accuracy'] for v in cmp.versions):.4f}" in highlighted
    body = "".join(page.text)
    pair = cmp._summary["pairwise"][0]
    assert "McNemar exact p" in body and f"{pair['a']} vs {pair['b']}" in body
    assert "<b>zero</b>" in body  # a class label, escaped, in the confusion matrix


def test_decision_view(hostile_store):
    d = hostile_store[2]
    page = parse(d._repr_html_())
    assert [text_of(b) for b in page.with_class("wl-badge-promoted")] == ["promoted"]
    body = "".join(page.text)
    assert d.reason in body and f"#{d.event}" in body and "active before" in body


def test_history_is_a_list_with_a_view(hostile_store):
    store = hostile_store[0]
    history = store.history()
    assert isinstance(history, list) and history == list(history)
    assert [e.kind for e in history][:2] == ["save", "promote"]
    page = parse(history._repr_html_())
    kinds = [text_of(b) for b in page.with_class("wl-badge") if "wl-badge-alias" not in b["classes"]]
    assert kinds == [e.kind for e in history]
    assert "".join(page.text).count(HOSTILE) >= 3  # promote, promote_if_better, rollback reasons


def test_plain_reprs_stay_short(hostile_store):
    store, cmp, decision, _ = hostile_store
    assert len(repr(store)) < 200 and "\n" not in repr(store)
    assert len(repr(store.get("v2"))) < 300


def test_fitted_estimator_keeps_scikit_learns_html_view(hostile_store):
    X_train, _, y_train, _ = hostile_store[3]
    model = RandomForestClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X_train, y_train)
    markup = model._repr_html_()
    page = Page(markup)
    assert page.errors == []
    assert any(c.startswith("sk-") for e in page.elements for c in e["classes"])
    assert "RandomForestClassifier" in "".join(page.text)


def test_parser_check_catches_unescaped_markup():
    """The check itself: markup smuggled in as a tag would be seen."""
    with pytest.raises(AssertionError):
        parse('<div><style></style><img src=x onerror=alert(1)></div>')


def test_live_model_view(hostile_store):
    store = hostile_store[0]
    with store.live("champion", poll_seconds=60) as live:
        page = parse(live._repr_html_())
        body = "".join(page.text)
        assert "champion" in body and "v2 (load #1)" in body
        assert [text_of(b) for b in page.with_class("wl-badge-active")] == ["serving"]
    closed = parse(live._repr_html_())
    assert "closed" in "".join(closed.text)
