"""Warm and unseen timing side by side, one-time costs and the break-even audio, for Table 1b, the
Pareto plot and the method section.

``batched`` (and ``paper-loop``) rows are warm: every timed repeat runs lengths the process already ran, so no
kernel is built inside a timed span (a batch job re-running a fixed set).  ``unseen`` rows time held-out lengths
the process never ran (a server meeting new utterances).  The break-even audio uses the unseen times when the run
has them (core.schema.break_even_hours).
"""
from __future__ import annotations

from typing import Optional

import pandas as pd

from core.schema import break_even_hours, one_time_s
from core.speedup import speedup, time_per_audio_s
from reports.render import Cell

COST_PARTS = ("load_s", "compile_s", "calibration_s", "export_s")
COLUMNS = [("CPU speed-up, unseen lengths", "ours"), ("One-time cost", "ours"), ("Break-even audio", "ours")]
METHOD_ROWS = [
    ("Warm timing (batched)", "every timed repeat runs the lengths (padded batch shapes) that the accuracy pass and "
     "warm-up already ran, so no kernel is built inside a timed span: what a batch job re-running a fixed set sees"),
    ("Unseen timing (unseen)", "each timed repeat runs its own held-out utterances, with lengths this process never "
     "ran, after a warm-up on other audio: what a server meeting new utterances sees; new shapes build kernels "
     "(and recompile, for a compiled variant) inside the timed span.  Both variants of a ratio ran the same subset"),
    ("One-time cost and break-even", "load (building the variant in the process, including any compilation, "
     "calibration or export done then) + any build-time seconds recorded beside it; break-even = the extra one-time "
     "seconds over the teacher's / the time saved per hour of audio (unseen times when measured): after that much "
     "speech the variant's total time beats the teacher's; cold / warm = the compile cache was empty / filled"),
]


MEANING = {"warm": "every timed repeat over lengths the process already ran",
           "unseen": "each timed repeat over lengths the process never ran"}


def word(scenario: Optional[str]) -> str:
    """How a speed-up from ``scenario``'s rows is labelled."""
    return "unseen" if scenario == "unseen" else "warm"


def times_note(scenario: Optional[str]) -> str:
    """The caption sentence of a table whose times come from one scenario's rows."""
    w = word(scenario)
    return f"Our times and speed-ups: {w} only ({MEANING[w]}; scenario {scenario or 'batched'})."


def _scen(df: pd.DataFrame) -> pd.Series:
    return df["scenario"].fillna("batched") if "scenario" in df else pd.Series("batched", index=df.index)


def unseen(df: pd.DataFrame) -> pd.DataFrame:
    return df[_scen(df) == "unseen"]


def one_time(rows: pd.DataFrame) -> float:
    med = [float(pd.to_numeric(rows[c], errors="coerce").median()) if c in rows and len(rows) else float("nan")
           for c in COST_PARTS]
    return one_time_s(*med)


def break_even(raw: pd.DataFrame, base: pd.DataFrame, rows: pd.DataFrame, time_col: str) -> tuple[float, str]:
    """Hours of audio, and which scenario's times gave them (unseen when both have unseen rows)."""
    u_b, u_v = unseen(base), unseen(rows)
    if len(u_b) and len(u_v):
        tb, tv, scen = time_per_audio_s(u_b, time_col), time_per_audio_s(u_v, time_col), "unseen"
    else:
        w_b, w_v = base[_scen(base) != "unseen"], rows[_scen(rows) != "unseen"]
        tb, tv, scen = time_per_audio_s(w_b, time_col), time_per_audio_s(w_v, time_col), "warm"
    return break_even_hours(one_time(rows), one_time(base), tv, tb), scen


def _hours(h: float, scen: str) -> Cell:
    if h != h:
        return Cell("n/a", "", "ours")
    return Cell("never" if h == float("inf") else f"{h:.2g} h", f"{scen} times", "ours", h)


def cells(raw: Optional[pd.DataFrame], base_variant: Optional[str], variant: Optional[str], time_col: str
          ) -> list[Cell]:
    """Table 1b's unseen speed-up, one-time cost and break-even for ``variant`` against ``base_variant``, from
    ``raw``: the CPU rows of every scenario."""
    if raw is None or not variant or not base_variant:
        return [Cell("n/a", "", "ours") for _ in COLUMNS]
    base, rows = raw[raw["variant"] == base_variant], raw[raw["variant"] == variant]
    ratio = speedup(unseen(rows), unseen(base), time_col)  # paired per repeat, as `footprint bench ratios`
    speed = Cell(f"x{ratio:.2f}", "", "ours", ratio) if ratio == ratio else Cell("n/a", "not timed", "ours")
    cost = one_time(rows)
    cache = next((str(x) for x in rows.get("compile_cache", []) if isinstance(x, str) and x), "")
    cost_cell = Cell("n/a", "", "ours") if cost != cost else Cell(f"{cost:.1f} s", cache and f"cache {cache}",
                                                                  "ours", cost)
    return [speed, cost_cell, _hours(*break_even(raw, base, rows, time_col))]
