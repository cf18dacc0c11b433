"""Item-8 comparisons from one run: paired per repeat (the variants were interleaved, so repeat r of two
variants ran minutes apart on the same machine state), then the median of the per-repeat ratios.

* batched vs paper-loop: RTFx ratio (model only) and end-to-end ratio, with the WER difference in points;
* int8 vs fp32: model-time speed-up for ``X+int8-dynamic`` vs ``X`` (and ``int8-dynamic`` vs the teacher);
* bf16-autocast vs fp32 the same way, and the batched ``X+bf16-autocast`` against ``X``'s fp32 paper loop (the
  suite's fastest equal-WER pipeline against the paper's);
* every other variant against the teacher of the run (a random-weight ``arch-X+recipe`` against ``arch-X``, the
  same generated workload), model only and end to end: the table a reader of a many-variant run wants, paired
  per repeat because a drifting VM moved the teacher's own time by 2x within one run;
* the same vs-teacher ratios on lengths never seen (scenario ``unseen``: every repeat over held-out lengths, the
  teacher and the variant on the same subset), beside the warm ones (``batched``: lengths already run);
* one-time costs (load, compile, calibration, export seconds) and the break-even audio: hours of speech after
  which the variant's total time, one-time cost included, beats the teacher's (``core.schema.break_even_hours``),
  from the unseen times when the run has them (a deployer's case);
* the energy tracker's overhead from meta.json (a median with its interval, or "not measured" and why).
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.speedup import per_repeat_speedups

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
    scenario: str = "batched"  # batched: warm (lengths already run) | unseen: lengths never run in the process


def _paired(df: Any, a: str, b: str, device: str, num: str, den: str) -> list[float]:
    """Per repeat: (audio/time) of a over (audio/time) of b, i.e. b's time / a's time for the same audio."""
    rows = df[(df["variant"] == a) & (df["device"] == device)]
    base = df[(df["variant"] == b) & (df["device"] == device)]
    return per_repeat_speedups(rows, base, num, den)


def _wer_diff(df: Any, a: str, b: str, device: str) -> float | None:
    wa = df[(df["variant"] == a) & (df["device"] == device)]["wer"].median()
    wb = df[(df["variant"] == b) & (df["device"] == device)]["wer"].median()
    return None if math.isnan(wa) or math.isnan(wb) else 100.0 * (wa - wb)


def _both_metrics(df: Any, kind: str, v: str, base: str, device: str, scenario: str = "batched") -> list[Ratio]:
    """``v`` against ``base``, model only and end to end."""
    out = []
    for metric, col in (("rtfx (model only)", "model_s"), ("end-to-end", "e2e_s")):
        per = _paired(df, v, base, device, col, col)
        if per:
            out.append(Ratio(kind, device, v, base, metric, statistics.median(per), per,
                             _wer_diff(df, v, base, device), scenario))
    return out


SCENARIO_LABEL = {"batched": "warm", "unseen": "unseen"}


def one_time(df: Any, variant: str, device: str, teacher: str | None) -> dict[str, Any] | None:
    """One-time seconds of ``variant`` on ``device`` and its break-even against ``teacher`` (see the docstring)."""
    from core.schema import break_even_hours, one_time_s

    def rows(v: str, scenario: str) -> Any:
        return df[(df["variant"] == v) & (df["device"] == device) & (df["scenario"].fillna("batched") == scenario)]

    def med(r: Any, col: str) -> float:
        return float(r[col].median()) if col in r and r[col].notna().any() else float("nan")

    def cost(v: str) -> float:
        r = df[(df["variant"] == v) & (df["device"] == device)]
        return one_time_s(*(med(r, c) for c in ("load_s", "compile_s", "calibration_s", "export_s")))

    every = df[(df["variant"] == variant) & (df["device"] == device)]
    if every.empty:
        return None
    out = {"variant": variant, "device": device, "one_time_s": cost(variant),
           **{c: med(every, c) for c in ("load_s", "compile_s", "calibration_s", "export_s")},
           "compile_cache": next((str(x) for x in every.get("compile_cache", []) if isinstance(x, str) and x), "")}
    if not teacher:
        return out
    scenario = "unseen" if not rows(variant, "unseen").empty and not rows(teacher, "unseen").empty else "batched"
    out["break_even_scenario"], out["is_teacher"] = scenario, variant == teacher
    for metric, col in (("model", "model_s"), ("e2e", "e2e_s")):
        a, b = rows(variant, scenario), rows(teacher, scenario)
        per_a = med(a.assign(_t=a[col] / a["audio_s"]), "_t") if not a.empty else float("nan")
        per_b = med(b.assign(_t=b[col] / b["audio_s"]), "_t") if not b.empty else float("nan")
        out[f"break_even_h_{metric}"] = 0.0 if variant == teacher else \
            break_even_hours(out["one_time_s"], cost(teacher), per_a, per_b)
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

    df_all = load_results(run_dir)
    meta = read_meta(run_dir)
    if "scenario" not in df_all:
        df_all["scenario"] = "batched"
    df = df_all[df_all["scenario"].fillna("batched") != "unseen"]  # everything below pairs within one scenario
    df_unseen = df_all[df_all["scenario"] == "unseen"]
    variants = set(df_all["variant"].dropna())
    ratios: list[Ratio] = []
    costs: list[dict[str, Any]] = []
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
                ratios += _both_metrics(df_unseen, VS_TEACHER, v, base, device, "unseen")
            if "@" not in v and not v.startswith("arch-"):
                c = one_time(df_all, v, device, teacher)
                if c:
                    costs.append(c)
    return {"run_dir": str(run_dir), "ratios": [asdict(r) for r in ratios], "one_time": costs,
            "tracker_overhead": meta.get("tracker_overhead", {})}


def _teacher_table(ratios: list[dict[str, Any]]) -> list[str]:
    """One line per variant and device, fastest (warm, model only) first: the warm and the unseen speed-ups with
    their per-repeat pairs, and the WER difference."""
    by: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
    for r in ratios:
        if r["kind"] == VS_TEACHER:
            by.setdefault((r["device"], r["a"]), {})[(r.get("scenario", "batched"), r["metric"])] = r
    if not by:
        return []
    lines = ["vs-teacher: speed-up over the run's teacher (a random-weight arch-X+recipe: over arch-X) as the median "
             "of per-repeat pairs (per repeat in brackets), WER difference in points (warm, whole set); warm = lengths "
             "already run (a batch job), unseen = each repeat over lengths this process never ran (a server)"]

    def key(kv: Any) -> tuple:
        return kv[0][0], -kv[1].get(("batched", "rtfx (model only)"), {}).get("median_ratio", 0)

    for (device, v), m in sorted(by.items(), key=key):
        cells = []
        for scenario in ("batched", "unseen"):
            for metric, label in (("rtfx (model only)", "model"), ("end-to-end", "e2e")):
                r = m.get((scenario, metric))
                if r:
                    cells.append(f"{SCENARIO_LABEL[scenario]} {label} x{r['median_ratio']:.2f} "
                                 f"({', '.join(f'{x:.2f}' for x in r['per_repeat'])})")
        first = m.get(("batched", "rtfx (model only)")) or next(iter(m.values()))
        wer = first["wer_diff_points"]
        lines.append(f"  {device:<5} {v:<46} vs {first['b']}: {'; '.join(cells)}"
                     + (f"; WER {wer:+.2f} pt" if wer is not None else ""))
    return lines


def _hours(h: float) -> str:
    if h != h:
        return "n/a"
    return "never (not faster)" if h == float("inf") else f"{h:.3g} h"


def _costs_table(costs: list[dict[str, Any]]) -> list[str]:
    """One-time seconds per variant and device and the break-even audio against the teacher."""
    if not costs:
        return []
    lines = ["one-time cost per process (load includes what was compiled, calibrated or exported while building; "
             "cache: the persistent compile cache was cold or warm) and break-even: hours of audio after which the "
             "variant's total time, one-time cost included, beats the teacher's (model / e2e time)"]
    for c in costs:
        parts = ", ".join(f"{k[:-2]} {c[k]:.1f} s" for k in ("load_s", "compile_s", "calibration_s", "export_s")
                          if c.get(k) == c.get(k) and c.get(k))
        cache = f"; cache {c['compile_cache']}" if c.get("compile_cache") else ""
        be = ""
        if c.get("is_teacher"):
            be = "; the reference for break-even"
        elif "break_even_h_model" in c:
            be = (f"; break-even ({SCENARIO_LABEL[c['break_even_scenario']]}) model {_hours(c['break_even_h_model'])}"
                  f", e2e {_hours(c['break_even_h_e2e'])}")
        lines.append(f"  {c['device']:<5} {c['variant']:<46} {c['one_time_s']:.1f} s ({parts or 'n/a'}{cache}){be}")
    return lines


def format_report(res: dict[str, Any]) -> str:
    lines = []
    for r in res["ratios"]:
        if r["kind"] == VS_TEACHER:
            continue
        wer = f", WER {r['wer_diff_points']:+.2f} pt" if r["wer_diff_points"] is not None else ""
        reps = ", ".join(f"{x:.2f}" for x in r["per_repeat"])
        lines.append(f"{r['kind']:<27} {r['device']:<5} {r['a']} vs {r['b']}: "
                     f"{SCENARIO_LABEL[r.get('scenario', 'batched')]} {r['metric']} x{r['median_ratio']:.2f} "
                     f"(per repeat {reps}){wer}")
    from bench.overhead import describe

    for dev, o in res["tracker_overhead"].items():
        lines.append(f"{'tracker overhead':<27} {dev:<5} {describe(o)}")
    lines += _teacher_table(res["ratios"])
    lines += _costs_table(res.get("one_time", []))
    return "\n".join(lines) or "no comparable pairs in this run"


def write(run_dir: str | Path) -> tuple[dict[str, Any], Path]:
    res = compute(run_dir)
    path = Path(run_dir) / "ratios.json"
    path.write_text(json.dumps(res, indent=2))
    return res, path
