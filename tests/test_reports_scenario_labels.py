"""No speed-up or time of ours without warm or unseen beside it: the HTML report's tables, the Markdown / LaTeX
tables, the Pareto figure, the savings summary and ``bench show``, over a fixture with both scenarios."""
from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from reports.figures import pareto
from reports.html import build_report
from reports.load import load_results, load_run
from reports.tables import all_tables, write_tables

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "results_small"
LABEL = re.compile(r"\b(warm|unseen)\b", re.I)
TIMED = re.compile(r"speed-up|\btime\b|ratio", re.I)


@pytest.fixture(scope="module")
def full() -> pd.DataFrame:
    """The fixture's rows (warm) plus unseen rows for every CPU variant at 1.5x their warm time."""
    df = load_results(FIXTURE)
    u = df[df["device"] == "cpu"].copy()
    u["scenario"] = "unseen"
    u["e2e_s"] = u["e2e_s"] * 1.5
    return pd.concat([df.assign(scenario="batched"), u], ignore_index=True)


class _Tables(HTMLParser):
    """Each <table>: its caption and (group, name, class) per column, the group spread over its colspan."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self._in: str | None = None
        self._row: list[tuple[str, int, str]] = []
        self._attrs: dict = {}
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append({"id": dict(attrs).get("id"), "caption": "", "heads": []})
        elif tag in ("caption", "th") and self.tables:
            self._in, self._attrs, self._text = tag, dict(attrs), ""
        elif tag == "tr":
            self._row = []

    def handle_data(self, data: str) -> None:
        if self._in:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption" and self._in == "caption":
            self.tables[-1]["caption"] = self._text
        elif tag == "th" and self._in == "th":
            self._row.append((self._text, int(self._attrs.get("colspan", 1)), self._attrs.get("class", "")))
        elif tag == "tr" and self._row and self.tables:
            self.tables[-1]["heads"].append(self._row)
            self._row = []
        if tag in ("caption", "th"):
            self._in = None

    def columns(self, t: dict) -> list[tuple[str, str, str]]:
        *groups, names = t["heads"]
        spread = [g for g, n, _ in groups[0] for _ in range(n)] if groups else [""] * len(names)
        return [(g, n, cls) for g, (n, _, cls) in zip(spread, names)]


def _check(group: str, name: str, cls: str, caption: str, where: str) -> None:
    """An ours speed-up / ratio header says warm or unseen itself; an ours time header, itself or in the caption.
    The paper's own columns (its measurements, neither scenario) are left as they are."""
    head = f"{group} {name}"
    if cls == "paper" or name.lower() == "paper" or group.lower().startswith("paper") or not TIMED.search(head):
        return
    if re.search(r"speed-up|ratio", head, re.I):
        assert LABEL.search(head), f"{where}: speed-up header {head!r} says neither warm nor unseen"
    else:
        assert LABEL.search(head) or LABEL.search(caption), f"{where}: {head!r} and its caption say neither"


@pytest.mark.parametrize("scenario", [None, "unseen"])
def test_every_table_in_the_report_says_warm_or_unseen(full: pd.DataFrame, scenario) -> None:  # noqa: ANN001
    run = dataclasses.replace(load_run(FIXTURE), results=full)
    page = build_report(run, scenario=scenario)
    p = _Tables()
    p.feed(page)
    assert {t["id"] for t in p.tables} >= {"table1", "table1b", "table2", "table2-arch", "table3", "table4", "savings"}
    checked = 0
    for t in p.tables:
        for g, n, cls in p.columns(t):
            _check(g, n, cls, t["caption"], t["id"])
            checked += bool(TIMED.search(f"{g} {n}"))
    assert checked >= 10
    w = "unseen" if scenario else "warm"
    captions = {t["id"]: t["caption"] for t in p.tables}
    for tid in ("table1", "table2", "table3", "table4", "savings"):
        assert re.search(rf"\b{w}\b", captions[tid]), f"{tid}'s caption does not say {w}"
    assert "warm" in captions["table2-arch"]  # architecture-only rows are always timed warm
    assert f"4 / 7 (ratio; ours {w})" in page  # Table 3's ratio row
    assert re.search(rf'class="what">{w} timed repeats<', page)  # the savings cards


def test_markdown_and_latex_tables_say_warm_or_unseen(full: pd.DataFrame, tmp_path: Path) -> None:
    tables = all_tables(full, scenario="unseen")
    paths = write_tables(tables, tmp_path / "md", tmp_path / "tex")
    md = {p.stem: p.read_text() for p in paths if p.suffix == ".md"}
    assert md
    for stem, text in md.items():
        caption, _, head = text.splitlines()[:3]
        for h in (c.strip() for c in head.strip("|").split("|")):
            group, _, name = h.rpartition(": ")
            _check(group, name, "", caption, f"{stem}.md")
    assert "Speed-up (unseen)" in md["table2"] and "CPU speed-up (unseen)" in md["table1b"]
    tex = "".join(p.read_text() for p in paths if p.suffix == ".tex")
    assert "Speed-up (unseen)" in tex


def test_pareto_says_which_times(full: pd.DataFrame) -> None:
    warm = pareto(full[full["scenario"] == "batched"], raw=full)
    assert "Times and energies are warm" in warm.caption and "hollow markers" in warm.caption
    unseen = pareto(full[full["scenario"] == "unseen"], raw=full)
    assert "Times and energies are unseen" in unseen.caption and "hollow" not in unseen.caption


def test_bench_show_labels_each_scenario(full: pd.DataFrame) -> None:
    from footprint.commands.bench import summarize

    assert set(summarize(full)["scenario"]) == {"batched (warm)", "unseen"}
