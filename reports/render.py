"""A small table model and its HTML, Markdown and LaTeX renderers.

Why not pandas' to_markdown/to_latex: they need tabulate and jinja2, which the suite does not otherwise depend on,
and neither handles a value with its spread underneath.  ``Table.to_frame()`` still gives a pandas DataFrame
(two-level columns) for notebooks.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pandas as pd


@dataclass(frozen=True)
class Cell:
    """One table cell: the value as printed, an optional spread line, and whose figure it is."""

    text: str
    sub: str = ""                 # e.g. "59.3-64.0, n=3"
    source: str = ""              # "paper" | "ours" | "" (labels)
    value: Optional[float] = None  # the number behind ``text``, for tests and notebooks

    @property
    def plain(self) -> str:
        return f"{self.text} ({self.sub})" if self.sub else self.text


def label(text: str) -> Cell:
    return Cell(text)


@dataclass
class Table:
    """Rows of cells under two-level column headers (group, name)."""

    id: str
    title: str
    caption: str
    columns: list[tuple[str, str]]
    rows: list[list[Cell]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, cells: list[Cell]) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"table {self.id}: row has {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(cells)

    def to_frame(self) -> pd.DataFrame:
        """Display strings (value and spread) with two-level columns."""
        cols = pd.MultiIndex.from_tuples(self.columns)
        return pd.DataFrame([[c.plain for c in r] for r in self.rows], columns=cols)

    def values(self) -> pd.DataFrame:
        """The numbers behind the cells (NaN where a cell is a label or n/a)."""
        cols = pd.MultiIndex.from_tuples(self.columns)
        return pd.DataFrame([[c.value if c.value is not None else float("nan") for c in r] for r in self.rows],
                            columns=cols)

    def column(self, group: str, name: str) -> list[Cell]:
        i = self.columns.index((group, name))
        return [r[i] for r in self.rows]

    # --- renderers -------------------------------------------------------------------------------------------
    def to_html(self) -> str:
        return to_html(self)

    def to_markdown(self) -> str:
        return to_markdown(self)

    def to_latex(self) -> str:
        return to_latex(self)


def _groups(columns: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """Consecutive runs of the same group name, for the spanning header row."""
    spans: list[tuple[str, int]] = []
    for g, _ in columns:
        if spans and spans[-1][0] == g:
            spans[-1] = (g, spans[-1][1] + 1)
        else:
            spans.append((g, 1))
    return spans


def to_html(t: Table) -> str:
    e = html.escape
    out = [f'<table id="{e(t.id)}" class="results">', f"<caption><b>{e(t.title)}.</b> {e(t.caption)}</caption>",
           "<thead>"]
    spans = _groups(t.columns)
    if any(g for g, _ in spans):
        out.append("<tr>" + "".join(
            f'<th colspan="{n}" class="group{" empty" if not g else ""}">{e(g)}</th>' for g, n in spans) + "</tr>")
    out.append("<tr>" + "".join(f'<th class="{_col_class(g, n)}">{e(n)}</th>' for g, n in t.columns) + "</tr>")
    out.append("</thead><tbody>")
    for row in t.rows:
        cells = []
        for c in row:
            cls = f' class="{c.source}"' if c.source else ' class="label"'
            sub = f'<span class="spread">{e(c.sub)}</span>' if c.sub else ""
            cells.append(f"<td{cls}>{e(c.text)}{sub}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if t.notes:
        out.append('<ul class="table-notes">' + "".join(f"<li>{e(n)}</li>" for n in t.notes) + "</ul>")
    return "\n".join(out)


def _col_class(group: str, name: str) -> str:
    """Shade a header like its cells: grey for the paper's columns, blue for ours, none for row labels."""
    if not group:
        return "label"
    g, n = group.lower(), name.lower()
    if n == "paper" or g.startswith("paper"):
        return "paper"
    return "ours" if n == "ours" or g.startswith("ours") else "label"


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def to_markdown(t: Table) -> str:
    """GitHub-flavoured Markdown; the two header levels are joined ("CPU time: paper")."""
    heads = [": ".join(p for p in (g, n) if p) for g, n in t.columns]
    lines = [f"**{t.title}.** {t.caption}", "", "| " + " | ".join(_md_escape(h) for h in heads) + " |",
             "|" + "|".join("---" if g == "" else "---:" for g, _ in t.columns) + "|"]
    for row in t.rows:
        lines.append("| " + " | ".join(_md_escape(c.plain) for c in row) + " |")
    lines += [""] + [f"- {n}" for n in t.notes]
    return "\n".join(lines).rstrip() + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "\u2013": "--", "\u2014": "---", "\u00d7": r"$\times$", "\u2082": r"\textsubscript{2}",
                  "\u2248": r"$\approx$", "\u2264": r"$\leq$", "\u2265": r"$\geq$"}


def latex_escape(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in s)


def to_latex(t: Table) -> str:
    """A booktabs table (needs \\usepackage{booktabs}); spreads in \\scriptsize after the value."""
    x = latex_escape
    spec = "".join("l" if i == 0 or t.columns[i][0] == "" else "r" for i in range(len(t.columns)))
    out = [r"\begin{table}[ht]", r"\centering", r"\small", rf"\caption{{\textbf{{{x(t.title)}.}} {x(t.caption)}}}",
           rf"\label{{tab:{t.id}}}", rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    spans = _groups(t.columns)
    if any(g for g, _ in spans):
        out.append(" & ".join(rf"\multicolumn{{{n}}}{{c}}{{{x(g)}}}" if n > 1 else x(g) for g, n in spans) + r" \\")
        rules, col = [], 1
        for g, n in spans:
            if g:
                rules.append(rf"\cmidrule(lr){{{col}-{col + n - 1}}}")
            col += n
        out.append(" ".join(rules))
    out.append(" & ".join(x(n) for _, n in t.columns) + r" \\")
    out.append(r"\midrule")
    for row in t.rows:
        out.append(" & ".join(x(c.text) + (rf" {{\scriptsize ({x(c.sub)})}}" if c.sub else "") for c in row)
                   + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    if t.notes:
        out.append(r"\par\smallskip\footnotesize " + r" \\ ".join(x(n) for n in t.notes))
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def write_tables(tables: list[Table], markdown_dir: Optional[Path] = None,
                 latex_dir: Optional[Path] = None) -> list[Path]:
    """Each table as <id>.md and/or <id>.tex; returns the files written."""
    written: list[Path] = []
    for d, ext, render in ((markdown_dir, "md", Table.to_markdown), (latex_dir, "tex", Table.to_latex)):
        if d is None:
            continue
        d = Path(d)
        d.mkdir(parents=True, exist_ok=True)
        for t in tables:
            p = d / f"{t.id}.{ext}"
            p.write_text(render(t), encoding="utf-8")
            written.append(p)
    return written
