"""Figures as PNG bytes: the paper's Figure 1 (student init) and Figure 2 (training data) from distillation logs,
and Pareto plots of WER against time, energy, size and variant memory from the results.

Built on ``matplotlib.figure.Figure`` with the Agg canvas, never pyplot: no global backend is switched (a notebook
keeps its own), nothing opens a window, and figures are freed when they go out of scope.
"""
from __future__ import annotations

import io
import math
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from reports.load import TrainLog
from reports.deploy import MEANING, word
from reports.stats import choose_scenario, is_gpu, recipe_rank, summary, trained, TIME_LABELS

log = logging.getLogger(__name__)

DPI = 110
COLORS = {"CPU": "#1f77b4", "GPU": "#d62728"}
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
INIT_LABELS = {"alternate": "alternate layers (DistilBERT)", "last": "last layers"}


@dataclass(frozen=True)
class Rendered:
    """A figure ready to embed: its id, title, caption and PNG bytes."""

    id: str
    title: str
    caption: str
    png: bytes

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        p = directory / f"{self.id}.png"
        p.write_bytes(self.png)
        return p


def _new(width: float = 7.0, height: float = 4.0, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.grid(True, color="#dddddd", linewidth=0.7)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig, axes


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # Fixed metadata keeps the bytes reproducible (no software/date stamp).
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _wer_curve(ax, tl: TrainLog, label: str, color: str) -> None:
    e = tl.per_epoch
    ax.plot(e["epoch"], e["dev_wer"] * 100.0, marker="o", markersize=4, linewidth=1.8, label=label, color=color)


def figure1(logs: Sequence[TrainLog]) -> Optional[Rendered]:
    """Dev WER per epoch of students initialised from alternate vs last teacher layers (paper Figure 1)."""
    # The most data first, so that the first pair found is the best-trained one.
    usable = sorted((t for t in logs if t.is_student and t.init in INIT_LABELS and not t.per_epoch.empty),
                    key=lambda t: (-(t.train_hours or 0.0), t.name))
    # Compare students that differ only by init: same architecture and training data.
    groups: dict[tuple, dict[str, TrainLog]] = {}
    for tl in usable:
        groups.setdefault((_arch(tl), round(float(tl.train_hours or 0), 3)), {}).setdefault(tl.init, tl)
    by_init = next((g for g in groups.values() if len(g) >= 2), {})
    if by_init:  # the same data: the caption states the budgets, and says so when their epochs differ
        caveat = _budgets(list(by_init.values()), "initialisation")
    else:  # no like-for-like pair: the best-trained of each init, and the caption says how they differ
        for tl in usable:
            by_init.setdefault(tl.init, tl)
        caveat = (" Not like for like: " + "; ".join(f"{t.name} {t.budget}" for t in by_init.values())
                  + ", so the curves differ by training budget as well as by initialisation.")
    if len(by_init) < 2:
        log.info("figure 1 skipped: need train_log.csv of an 'alternate' and a 'last' student, found %s",
                 ", ".join(f"{t.name} ({t.init})" for t in logs) or "none")
        return None
    fig, (ax,) = _new()
    for (init, tl), color in zip(sorted(by_init.items()), PALETTE):
        _wer_curve(ax, tl, f"{INIT_LABELS[init]}: {tl.name}", color)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("validation WER (%)")  # distillation's held-out split, not the reported dev-clean
    ax.set_title("Student initialisation strategies")
    ax.legend(frameon=False)
    names = ", ".join(_where(t) for t in by_init.values())
    return Rendered("figure1", "Figure 1",
                    "Students initialised from alternating teacher layers (DistilBERT's strategy) or from the last "
                    f"layers, then distilled; validation WER per epoch (from {names}). Paper: alternating layers win "
                    f"from the first epoch on.{caveat}", png_bytes(fig))


def _budgets(logs: Sequence[TrainLog], compared: str) -> str:
    """The caption's statement of each curve's training budget; when the epochs differ, that the curves compare
    budgets as well as what the figure is about."""
    budgets = "; ".join(f"{t.name} {t.budget}" for t in logs)
    epochs = {(t.trained_for or (None,))[0] for t in logs}
    return f" Budgets: {budgets}" + (": they differ in epochs too (and each learning-rate schedule was fitted to its "
                                     f"own), so the curves compare budgets as well as {compared}." if len(epochs) > 1
                                     else ".")


def _arch(tl: TrainLog) -> tuple:
    """What makes two students comparable: depth and front end (from variant.json), else the recipe name."""
    layers = tl.config.get("layers")
    if layers is not None:
        return (int(layers), str(tl.config.get("student_arch") or "standard"))
    return (tl.recipe or "",)


def _where(tl: TrainLog) -> str:
    """The log's folder and file name: enough to find it, without this machine's absolute path."""
    return f"{tl.path.parent.name}/{tl.path.name}"


def figure2_logs(logs: Sequence[TrainLog]) -> dict[float, TrainLog]:
    """Figure 2's logs by hours of training audio."""
    candidates = [t for t in logs if t.train_hours and t.is_student and t.init != "last" and not t.per_epoch.empty]
    # Compare students that differ only by their data: same architecture and init (a depth sweep trained on the
    # same hours must not stand in for the data comparison); the group with the most amounts of data wins.
    groups: dict[tuple, dict[float, TrainLog]] = {}
    for tl in sorted(candidates, key=lambda t: t.name):
        groups.setdefault((_arch(tl), tl.init), {}).setdefault(round(float(tl.train_hours or 0), 3), tl)
    return max(groups.values(), key=len, default={})


def figure2(logs: Sequence[TrainLog]) -> Optional[Rendered]:
    """Dev WER per epoch for students trained on different amounts of audio (paper Figure 2)."""
    by_hours = figure2_logs(logs)
    if len(by_hours) < 2:
        log.info("figure 2 skipped: need train_log.csv of students trained on two amounts of data")
        return None
    fig, (ax,) = _new()
    for (hours, tl), color in zip(sorted(by_hours.items(), reverse=True), PALETTE):
        _wer_curve(ax, tl, f"{hours:g} h of training audio: {tl.name}", color)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("validation WER (%)")  # distillation's held-out split, not the reported dev-clean
    ax.set_title("Amount of training data")
    ax.legend(frameon=False)
    caveat = _budgets([t for _, t in sorted(by_hours.items(), reverse=True)], "data")
    return Rendered("figure2", "Figure 2",
                    "Students distilled on different amounts of audio; validation WER per epoch. Paper: "
                    f"train-clean-360 beats train-clean-100.{caveat}", png_bytes(fig))


def pareto_front(x: Iterable[float], y: Iterable[float]) -> list[int]:
    """Indices of points no other point beats on both x and y (lower is better), sorted by x."""
    pts = sorted(((float(a), float(b), i) for i, (a, b) in enumerate(zip(x, y))), key=lambda p: (p[0], p[1]))
    front, best = [], float("inf")
    for _, b, i in pts:
        if b < best:
            front.append(i)
            best = b
    return front


def _short(variant: str) -> str:
    return variant.replace("distill-", "d-").replace("+int8", "+i8").replace("-dynamic", "")


def _pareto_panel(ax, s: pd.DataFrame, xcol: str, xlabel: str, by_device: bool, logx: bool = False) -> None:
    groups = s.groupby("device_kind") if by_device else [("all", s)]
    if logx:  # CPU and GPU differ by an order of magnitude
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(_minor_label))
    labels: list[tuple[float, float, str]] = []
    for kind, g in groups:
        g = g.dropna(subset=[xcol, "wer"])
        if g.empty:
            continue
        color = COLORS.get(str(kind), "#444444")
        ax.scatter(g[xcol], g["wer"] * 100, s=28, color=color, label=str(kind) if by_device else None, zorder=3)
        idx = pareto_front(g[xcol], g["wer"])
        fr = g.iloc[idx]
        ax.step(fr[xcol], fr["wer"] * 100, where="post", color=color, alpha=0.5, linewidth=1.2)
        labels += [(float(r[xcol]), float(r["wer"]) * 100, _short(str(r["variant"]))) for _, r in g.iterrows()]
    ax.set_xlabel(xlabel)
    ax.set_ylabel("WER (%)")
    _place_labels(ax, labels)


def _minor_label(v: float, _pos: object) -> str:
    """Label only the 2 and 5 minor ticks of a log axis, as plain numbers."""
    mantissa = round(v / 10 ** math.floor(math.log10(v)), 6) if v > 0 else 0
    return f"{v:g}" if mantissa in (2, 5) else ""


def _place_labels(ax, labels: list[tuple[float, float, str]]) -> None:
    """Annotate points, nudging a label down while it would overprint one already placed (greedy, in pixels)."""
    ax.figure.canvas.draw()  # fixes the limits and transforms
    placed: list[tuple[float, float, float]] = []
    for x, y, text in sorted(labels, key=lambda t: (-t[1], t[0])):
        px, py = ax.transData.transform((x, y))
        dy = 3.0
        width = 4.5 * len(text)
        while any(abs(py + dy - qy) < 9 and px < qx + qw and qx < px + width for qx, qy, qw in placed):
            dy -= 9
        placed.append((px, py + dy, width))
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, dy * 72 / DPI), fontsize=7,
                    color="#333333")


def _unseen_points(ax, s: pd.DataFrame, raw: Optional[pd.DataFrame], time_col: str) -> bool:
    """Hollow markers at each variant's unseen-lengths time (its whole-set WER, as the filled warm marker)."""
    if raw is None or "scenario" not in raw or not (raw["scenario"] == "unseen").any():
        return False
    u = summary(trained(raw[raw["scenario"] == "unseen"]), time_col)[["variant", "device", "time_s"]]
    m = s[["variant", "device", "device_kind", "wer"]].merge(u, on=["variant", "device"]).dropna(subset=["time_s"])
    for kind, g in m.groupby("device_kind"):
        ax.scatter(g["time_s"], g["wer"] * 100, s=28, facecolors="none", edgecolors=COLORS.get(str(kind), "#444444"),
                   label=f"{kind}, unseen lengths", zorder=3)
    return not m.empty


def pareto(df: pd.DataFrame, time_col: str = "e2e_s", raw: Optional[pd.DataFrame] = None) -> Optional[Rendered]:
    """WER against time, energy per audio hour and size; the stepped line is each device's Pareto front.  Filled
    markers are warm times (lengths already run); with ``raw``'s unseen rows, hollow ones the unseen-lengths times."""
    w = word(choose_scenario(df))  # the filled markers' scenario: the one the tables use
    s = summary(trained(df), time_col)
    s = s.dropna(subset=["wer"])
    if s.empty:
        log.info("pareto plots skipped: no rows with a WER")
        return None
    order = [recipe_rank(r, n) for r, n in zip(s["recipe"], s["transformer_layers"])]
    s = s.assign(_order=order).sort_values("_order")
    fig, axes = _new(16.0, 4.0, ncols=4)
    tc = s["time_col"].iloc[0]
    _pareto_panel(axes[0], s.assign(_x=s["time_s"]), "_x", f"{tc.replace('_s', '')} time (s, {w}, median, log scale)",
                  True, logx=True)
    _pareto_panel(axes[1], s.assign(_x=s["kwh_per_audio_hour"] * 1000), "_x",
                  f"energy (Wh per hour of audio, {w}, log scale)", True, logx=True)
    sizes = s.sort_values("device_kind").drop_duplicates("variant")  # size does not depend on the device
    # the weights as the model runs (int8 bytes for int8, params x 4 B for fp32), the size of Table 1: the size on
    # disk mixes in the storage choice (the embedded models are stored fp16 but run fp32)
    _pareto_panel(axes[2], sizes.assign(_x=sizes["size_mb"]), "_x", "size of the weights as run (MB)", False)
    # the memory the variant's own pass needs (weights + activations of its heaviest batch, alone): per device
    _pareto_panel(axes[3], s.assign(_x=s["variant_peak_mb"]), "_x", "variant peak memory (MB, weights + activations)",
                  True)
    if s["variant_peak_mb"].isna().all():
        axes[3].text(0.5, 0.5, "not measured in this run", ha="center", va="center", transform=axes[3].transAxes)
    both = w == "warm" and _unseen_points(axes[0], s, raw, time_col)
    axes[0].legend(frameon=False, loc="upper right")
    axes[0].set_title("WER vs time (filled: warm, hollow: unseen)" if both else f"WER vs time ({w})")
    axes[1].set_title(f"WER vs energy ({w})")
    axes[2].set_title("WER vs size")
    axes[3].set_title("WER vs memory")
    gpu = any(is_gpu(d) for d in s["device"])
    return Rendered("pareto", "Figure 3",
                    f"Pareto plots of WER against {TIME_LABELS.get(tc, tc)}, energy per hour of audio, model size "
                    "(the weights as run, as in Table 1) and the variant's peak memory (weights + activations of its "
                    "heaviest batch, measured with only that variant loaded; "
                    f"medians over repeats; {'CPU and GPU' if gpu else 'CPU only'}; trained variants only). The "
                    "stepped line joins the variants that no other variant beats on both axes. Times and energies are "
                    f"{w} ({MEANING[w]})" + ("; hollow markers: the same variants on lengths never run "
                                                           "before (unseen), with their whole-set WER." if both else
                                                           "." if w == "unseen" else
                                                           "; this run has no unseen-lengths timing."),
                    png_bytes(fig))


def all_figures(df: pd.DataFrame, logs: Sequence[TrainLog], time_col: str = "e2e_s",
                raw: Optional[pd.DataFrame] = None) -> list[Rendered]:
    return [f for f in (figure1(logs), figure2(logs), pareto(df, time_col, raw)) if f is not None]
