"""Item-8 comparisons from one run: paired per repeat (the variants were interleaved, so repeat r of two
variants ran minutes apart on the same machine state), then the median of the per-repeat ratios.

* batched vs paper-loop: RTFx ratio (model only) and end-to-end ratio, with the WER difference in points;
* int8 vs fp32: model-time speed-up for ``X+int8-dynamic`` vs ``X`` (and ``int8-dynamic`` vs the teacher);
* bf16-autocast vs fp32 the same way, and the batched ``X+bf16-autocast`` against ``X``'s fp32 paper loop (the
  suite's fastest equal-WER pipeline against the paper's);
* every other variant against the teacher of the run (a random-weight ``arch-X+recipe`` against ``arch-X``, the
  same generated workload), model only and end to end: the table a reader of a many-variant run wants, paired
  per repeat because a drifting VM moved the teacher's own time by 2x within one run;
* the energy tracker's overhead from meta.json.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

INT8 = "+int8-dynamic"
AUTOCAST = "+bf16-autocast"
# recipe suffix -> the kind of its speed-up over the same model in fp32
SPEEDUP_KINDS = {INT8: "int8/fp32", AUTOCAST: "bf16-autocast/fp32"}
TEACHER_NAMES = ("embedded", "baseline", "teacher")
VS_TEACHER = "vs-teacher"


@dataclass
class Ratio:
    kind: str          # batched/paper-loop | batched+autocast/paper-loop | int8/fp32 | bf16-autocast/fp32 | vs-teacher
    device: str
    a: str             # numerator variant (the faster one, if the claim holds)
    b: str
    metric: str
    median_ratio: float
    per_repeat: list[float]
    wer_diff_points: float | None = None


def _paired(df: Any, a: str, b: str, device: str, num: str, den: str) -> list[float]:
    """Per repeat: (audio/time) of a over (audio/time) of b, i.e. b's time / a's time for the same audio."""
    ra = df[(df["variant"] == a) & (df["device"] == device)].set_index("repeat")
    rb = df[(df["variant"] == b) & (df["device"] == device)].set_index("repeat")
    out = []
    for rep in sorted(set(ra.index) & set(rb.index)):
        ta, tb = float(ra.loc[rep, num]), float(rb.loc[rep, den])
        if ta > 0 and not math.isnan(tb):
            out.append((tb / float(rb.loc[rep, "audio_s"])) / (ta / float(ra.loc[rep, "audio_s"])))
    return out


def _wer_diff(df: Any, a: str, b: str, device: str) -> float | None:
    wa = df[(df["variant"] == a) & (df["device"] == device)]["wer"].median()
    wb = df[(df["variant"] == b) & (df["device"] == device)]["wer"].median()
    return None if math.isnan(wa) or math.isnan(wb) else 100.0 * (wa - wb)


def _both_metrics(df: Any, kind: str, v: str, base: str, device: str) -> list[Ratio]:
    """``v`` against ``base``, model only and end to end."""
    out = []
    for metric, col in (("rtfx (model only)", "model_s"), ("end-to-end", "e2e_s")):
        per = _paired(df, v, base, device, col, col)
        if per:
            out.append(Ratio(kind, device, v, base, metric, statistics.median(per), per,
                             _wer_diff(df, v, base, device)))
    return out


def _reference(v: str, variants: set[str], teacher: str | None) -> str | None:
    """What ``v`` is compared with: a random-weight ``arch-X+recipe`` with its ``arch-X`` (the same generated
    workload), any other variant with the run's teacher; None for the references themselves."""
    if v.startswith("arch-"):
        base = v.split("+", 1)[0]
        return base if base != v and base in variants else None
    return teacher if teacher and v != teacher else None


def compute(run_dir: str | Path) -> dict[str, Any]:
    from core.results import load_results, read_meta

    df = load_results(run_dir)
    meta = read_meta(run_dir)
    variants = set(df["variant"].dropna())
    ratios: list[Ratio] = []
    for device in sorted(df["device"].dropna().unique()):
        for v in sorted(variants):
            if v + "@paper-loop" in variants:
                ratios += _both_metrics(df, "batched/paper-loop", v, v + "@paper-loop", device)
            for suffix, kind in SPEEDUP_KINDS.items():
                base = v[: -len(suffix)] if v.endswith(suffix) else None
                if v == suffix[1:]:  # the recipe applied to the teacher itself
                    base = next((t for t in TEACHER_NAMES if t in variants), None)
                if base and base in variants:
                    per = _paired(df, v, base, device, "model_s", "model_s")
                    if per:
                        ratios.append(Ratio(kind, device, v, base, "model-time speed-up",
                                            statistics.median(per), per, _wer_diff(df, v, base, device)))
                if suffix == AUTOCAST and base and base + "@paper-loop" in variants:
                    ratios += _both_metrics(df, "batched+autocast/paper-loop", v, base + "@paper-loop", device)
        teacher = next((t for t in TEACHER_NAMES if t in variants), None)
        for v in sorted(variants):
            base = _reference(v, variants, teacher)
            if base and "@" not in v:  # scenario rows (v@paper-loop) are compared with their own variant above
                ratios += _both_metrics(df, VS_TEACHER, v, base, device)
    return {"run_dir": str(run_dir), "ratios": [asdict(r) for r in ratios],
            "tracker_overhead": meta.get("tracker_overhead", {})}


def _teacher_table(ratios: list[dict[str, Any]]) -> list[str]:
    """One line per variant and device, fastest (model only) first: both speed-ups, their per-repeat pairs, WER."""
    by: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in ratios:
        if r["kind"] == VS_TEACHER:
            by.setdefault((r["device"], r["a"]), {})[r["metric"]] = r
    if not by:
        return []
    lines = ["vs-teacher: speed-up over the run's teacher (a random-weight arch-X+recipe: over arch-X) as the median "
             "of per-repeat pairs (per repeat in brackets), WER difference in points"]
    order = sorted(by.items(), key=lambda kv: (kv[0][0], -kv[1].get("rtfx (model only)", {}).get("median_ratio", 0)))
    for (device, v), m in order:
        cells = []
        for metric, label in (("rtfx (model only)", "model"), ("end-to-end", "e2e")):
            r = m.get(metric)
            if r:
                cells.append(f"{label} x{r['median_ratio']:.2f} ({', '.join(f'{x:.2f}' for x in r['per_repeat'])})")
        first = next(iter(m.values()))
        wer = first["wer_diff_points"]
        lines.append(f"  {device:<5} {v:<46} vs {first['b']}: {'; '.join(cells)}"
                     + (f"; WER {wer:+.2f} pt" if wer is not None else ""))
    return lines


def format_report(res: dict[str, Any]) -> str:
    lines = []
    for r in res["ratios"]:
        if r["kind"] == VS_TEACHER:
            continue
        wer = f", WER {r['wer_diff_points']:+.2f} pt" if r["wer_diff_points"] is not None else ""
        reps = ", ".join(f"{x:.2f}" for x in r["per_repeat"])
        lines.append(f"{r['kind']:<27} {r['device']:<5} {r['a']} vs {r['b']}: {r['metric']} x{r['median_ratio']:.2f} "
                     f"(per repeat {reps}){wer}")
    for dev, o in res["tracker_overhead"].items():
        frac = 100 * o.get("fraction", float("nan"))
        lines.append(f"{'tracker overhead':<27} {dev:<5} {o.get('method')}: {frac:+.2f} % "
                     f"(min with vs without over {o.get('pairs')} pairs; median-based "
                     f"{100 * o.get('median_fraction', o.get('fraction', float('nan'))):+.2f} %; window open/close "
                     f"{100 * o.get('window_ops_fraction', float('nan')):.3f} %; process CPU time "
                     f"{100 * o.get('cpu_time_fraction', float('nan')):+.2f} %)")
    lines += _teacher_table(res["ratios"])
    return "\n".join(lines) or "no comparable pairs in this run"


def write(run_dir: str | Path) -> tuple[dict[str, Any], Path]:
    res = compute(run_dir)
    path = Path(run_dir) / "ratios.json"
    path.write_text(json.dumps(res, indent=2))
    return res, path
