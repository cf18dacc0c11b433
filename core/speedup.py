"""The speed-up of one variant over another in a run: the median over repeats of each repeat's ratio.

Why paired: the runner interleaves the variants within every repeat, so repeat r of two variants ran minutes apart
on the same machine state, and on the same audio (an ``unseen`` repeat runs its own held-out subset, the same for
every variant).  On a VM whose speed drifts by up to 2x within a run, a ratio taken within a repeat is steadier
than the ratio of two medians taken at different moments, and the two can differ by a tenth (x2.33 against x2.52
for one variant of one run).  ``footprint bench ratios`` and the report's tables both use :func:`speedup`, and the
runner's line for each finished variant pairs its times with :func:`paired_ratios`, so all three print the same
figure.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas only where rows are read: the runner's progress line needs only paired_ratios
    import pandas as pd


def paired_ratios(reference: Mapping[int, float], variant: Mapping[int, float]) -> list[float]:
    """``reference[r] / variant[r]`` for every repeat ``r`` both have (times of the same audio), in repeat order."""
    return [float(reference[r] / variant[r]) for r in sorted(set(reference) & set(variant)) if variant[r] > 0]


def _seconds_per_audio_s(rows: pd.DataFrame, col: str) -> pd.Series:
    """Seconds of ``col`` per second of audio, row by row."""
    import pandas as pd

    return pd.to_numeric(rows[col], errors="coerce") / pd.to_numeric(rows["audio_s"], errors="coerce")


def time_per_audio_s(rows: pd.DataFrame, col: str) -> float:
    """The median over ``rows`` of seconds of ``col`` per second of audio; NaN when there is none."""
    if rows.empty or col not in rows or "audio_s" not in rows:
        return math.nan
    return float(_seconds_per_audio_s(rows, col).median())


def _per_audio_s(rows: pd.DataFrame, col: str) -> pd.Series:
    """Seconds of ``col`` per second of audio, one value per repeat (the median where a repeat has several rows)."""
    import pandas as pd

    if rows.empty or col not in rows or "audio_s" not in rows or "repeat" not in rows:
        return pd.Series(dtype=float)
    return _seconds_per_audio_s(rows, col).groupby(rows["repeat"]).median().dropna()


def per_repeat_speedups(rows: pd.DataFrame, base: pd.DataFrame, col: str,
                        base_col: str | None = None) -> list[float]:
    """For every repeat both have: ``base``'s time (``base_col``, default ``col``) per second of audio over that of
    ``rows`` (above 1: ``rows`` is faster), in repeat order."""
    return paired_ratios(_per_audio_s(base, base_col or col).to_dict(), _per_audio_s(rows, col).to_dict())


def speedup(rows: pd.DataFrame, base: pd.DataFrame, col: str) -> float:
    """The median of :func:`per_repeat_speedups`; where no repeat pairs up (rows gathered from separate runs), the
    ratio of the two medians of time per second of audio; NaN where either side has no time."""
    paired = per_repeat_speedups(rows, base, col)
    if paired:
        return statistics.median(paired)
    tv, tb = time_per_audio_s(rows, col), time_per_audio_s(base, col)
    return tb / tv if tv and tv == tv and tb == tb else math.nan
