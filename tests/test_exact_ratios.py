"""bench.ratios against hand-computed per-repeat ratios, WER differences and report lines (frames built here;
``compute`` reads them through a stand-in for core.results)."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

import core.results
from bench.ratios import (_both_metrics, _paired, _reference, _teacher_table, _wer_diff, compute, format_report,
                          write)

nan = float("nan")


def frame(rows: list[tuple]) -> pd.DataFrame:
    """(variant, repeat, model_s, e2e_s, audio_s, wer) on cpu."""
    return pd.DataFrame([{"variant": v, "device": "cpu", "repeat": r, "model_s": m, "e2e_s": e, "audio_s": a,
                          "wer": w} for v, r, m, e, a, w in rows])


def test_paired_is_time_ratio_per_second_of_audio() -> None:
    # repeat 0: a 2 s over 10 s of audio, b 6 s over 20 s -> (6/20) / (2/10) = 1.5
    # repeat 1: a 1 s / 10 s, b 4 s / 10 s -> 4; repeat 2 only in a; repeat 3: a 0 s (skipped); repeat 4: b NaN
    df = frame([("a", 0, 2.0, 3.0, 10.0, 0.1), ("b", 0, 6.0, 9.0, 20.0, 0.2),
                ("a", 1, 1.0, 2.0, 10.0, 0.1), ("b", 1, 4.0, 5.0, 10.0, 0.2), ("a", 2, 1.0, 1.0, 10.0, 0.1),
                ("a", 3, 0.0, 1.0, 10.0, 0.1), ("b", 3, 4.0, 5.0, 10.0, 0.2),
                ("a", 4, 1.0, 1.0, 10.0, 0.1), ("b", 4, nan, 5.0, 10.0, 0.2)])
    assert _paired(df, "a", "b", "cpu", "model_s", "model_s") == pytest.approx([1.5, 4.0])
    # numerator and denominator columns are separate: a's model time against b's end-to-end time
    assert _paired(df, "a", "b", "cpu", "model_s", "e2e_s") == pytest.approx([(9 / 20) / (2 / 10), 5.0, 5.0])
    assert _paired(df, "a", "b", "cuda", "model_s", "model_s") == []


def test_wer_diff_in_points() -> None:
    df = frame([("a", 0, 1, 1, 1, 0.10), ("a", 1, 1, 1, 1, 0.14), ("a", 2, 1, 1, 1, 0.30),
                ("b", 0, 1, 1, 1, 0.05), ("c", 0, 1, 1, 1, nan)])
    assert _wer_diff(df, "a", "b", "cpu") == pytest.approx(100 * (0.14 - 0.05))
    assert _wer_diff(df, "b", "a", "cpu") == pytest.approx(-9.0)
    assert _wer_diff(df, "a", "c", "cpu") is None and _wer_diff(df, "c", "a", "cpu") is None


def test_both_metrics() -> None:
    df = frame([("v", 0, 1.0, 2.0, 10.0, 0.2), ("v", 1, 2.0, 4.0, 10.0, 0.2), ("v", 2, 1.0, 2.0, 10.0, 0.2),
                ("t", 0, 3.0, 5.0, 10.0, 0.1), ("t", 1, 4.0, 5.0, 10.0, 0.1), ("t", 2, 5.0, 8.0, 10.0, 0.1)])
    model, e2e = _both_metrics(df, "kind", "v", "t", "cpu")
    assert (model.kind, model.device, model.a, model.b, model.metric) == ("kind", "cpu", "v", "t", "rtfx (model only)")
    assert model.per_repeat == pytest.approx([3.0, 2.0, 5.0]) and model.median_ratio == pytest.approx(3.0)
    assert e2e.metric == "end-to-end" and e2e.per_repeat == pytest.approx([2.5, 1.25, 4.0])
    assert e2e.median_ratio == pytest.approx(2.5)
    assert model.wer_diff_points == pytest.approx(10.0) and e2e.wer_diff_points == pytest.approx(10.0)
    assert _both_metrics(df, "kind", "v", "nobody", "cpu") == []


def test_reference() -> None:
    variants = {"arch-large-L12", "arch-large-L12+int8-dynamic", "arch-base-L4+x", "teacher", "s"}
    assert _reference("arch-large-L12+int8-dynamic", variants, "teacher") == "arch-large-L12"
    assert _reference("arch-large-L12", variants, "teacher") is None
    assert _reference("arch-base-L4+x", variants, "teacher") is None          # its fp32 arch row is absent
    assert _reference("s", variants, "teacher") == "teacher"
    assert _reference("teacher", variants, "teacher") is None
    assert _reference("s", variants, None) is None and _reference("s", variants, "") is None
    # two recipes on an arch row: still against the plain arch row (the text before the first "+")
    assert _reference("arch-large-L12+int8+x", variants | {"arch-large-L12+int8"}, "teacher") == "arch-large-L12"


def run(monkeypatch: pytest.MonkeyPatch, df: pd.DataFrame, meta: dict | None = None) -> dict:
    read: list = []
    monkeypatch.setattr(core.results, "load_results", lambda d: read.append(("rows", d)) or df)
    monkeypatch.setattr(core.results, "read_meta", lambda d: read.append(("meta", d)) or (meta or {}))
    res = compute("RUN")
    assert read == [("rows", "RUN"), ("meta", "RUN")]
    return res


def by_key(res: dict) -> dict:
    return {(r["kind"], r["a"], r["b"], r["metric"]): r for r in res["ratios"]}


def test_compute_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = []
    # model times per repeat (e2e = model + 1); audio 10 s throughout
    for v, times, wer in (("teacher", (4.0, 8.0), 0.10), ("teacher@paper-loop", (8.0, 12.0), 0.10),
                          ("teacher+int8-dynamic", (2.0, 2.0), 0.12), ("int8-dynamic", (1.0, 4.0), 0.13),
                          ("teacher+bf16-autocast", (1.0, 2.0), 0.10)):
        rows += [(v, r, t, t + 1.0, 10.0, wer) for r, t in enumerate(times)]
    res = run(monkeypatch, frame(rows), {"tracker_overhead": {"cpu": {"fraction": 0.5}}})
    assert res["run_dir"] == "RUN" and res["tracker_overhead"] == {"cpu": {"fraction": 0.5}}
    k = by_key(res)
    bp = k[("batched/paper-loop", "teacher", "teacher@paper-loop", "rtfx (model only)")]
    assert bp["per_repeat"] == pytest.approx([2.0, 1.5]) and bp["median_ratio"] == pytest.approx(1.75)
    assert bp["wer_diff_points"] == 0.0
    e2e = k[("batched/paper-loop", "teacher", "teacher@paper-loop", "end-to-end")]
    assert e2e["per_repeat"] == pytest.approx([9 / 5, 13 / 9])
    q = k[("int8/fp32", "teacher+int8-dynamic", "teacher", "model-time speed-up")]
    assert q["device"] == "cpu"
    assert q["per_repeat"] == pytest.approx([2.0, 4.0]) and q["median_ratio"] == pytest.approx(3.0)
    assert q["wer_diff_points"] == pytest.approx(2.0)
    # the recipe applied to the teacher itself: int8-dynamic against the run's teacher
    q = k[("int8/fp32", "int8-dynamic", "teacher", "model-time speed-up")]
    assert q["per_repeat"] == pytest.approx([4.0, 2.0]) and q["wer_diff_points"] == pytest.approx(3.0)
    bf = k[("bf16-autocast/fp32", "teacher+bf16-autocast", "teacher", "model-time speed-up")]
    assert bf["per_repeat"] == pytest.approx([4.0, 4.0])
    ap = k[("batched+autocast/paper-loop", "teacher+bf16-autocast", "teacher@paper-loop", "rtfx (model only)")]
    assert ap["per_repeat"] == pytest.approx([8.0, 6.0]) and ap["median_ratio"] == pytest.approx(7.0)
    vs = {(a, m) for kind, a, b, m in k if kind == "vs-teacher"}
    assert vs == {(a, m) for a in ("teacher+int8-dynamic", "int8-dynamic", "teacher+bf16-autocast")
                  for m in ("rtfx (model only)", "end-to-end")}
    assert all(b == "teacher" for kind, a, b, m in k if kind == "vs-teacher")
    assert len(res["ratios"]) == 2 + 3 + 2 + 6


def test_compute_arch_rows_and_odd_names(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = []
    for v, t in (("arch-large-L12", 8.0), ("arch-large-L12+int8-dynamic", 2.0), ("s", 4.0),
                 ("s0123456789abc", 1.0), ("int8-dynamic", 1.0)):
        rows += [(v, r, t, t, 10.0, nan) for r in range(2)]
    res = run(monkeypatch, frame(rows))
    assert res["tracker_overhead"] == {}
    k = by_key(res)
    # no teacher in this run: the arch row against its fp32 arch row only, int8-dynamic against nobody;
    # "s0123456789abc" is 13 characters after "s", as long as "+int8-dynamic", but does not end with it
    assert set(k) == {("int8/fp32", "arch-large-L12+int8-dynamic", "arch-large-L12", "model-time speed-up"),
                      ("vs-teacher", "arch-large-L12+int8-dynamic", "arch-large-L12", "rtfx (model only)"),
                      ("vs-teacher", "arch-large-L12+int8-dynamic", "arch-large-L12", "end-to-end")}
    assert k[("vs-teacher", "arch-large-L12+int8-dynamic", "arch-large-L12", "end-to-end")]["median_ratio"] == 4.0
    assert k[("int8/fp32", "arch-large-L12+int8-dynamic", "arch-large-L12", "model-time speed-up")][
        "wer_diff_points"] is None


def test_compute_teacher_names_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = []
    for v, t in (("embedded", 4.0), ("baseline", 2.0), ("int8-dynamic", 1.0)):
        rows += [(v, r, t, t, 10.0, 0.1) for r in range(2)]
    k = by_key(run(monkeypatch, frame(rows)))
    # "embedded" comes first in TEACHER_NAMES: it is the teacher, "baseline" is compared with it
    assert ("int8/fp32", "int8-dynamic", "embedded", "model-time speed-up") in k
    assert k[("vs-teacher", "baseline", "embedded", "rtfx (model only)")]["per_repeat"] == pytest.approx([2.0, 2.0])
    assert not [key for key in k if key[1] == "embedded"]


def test_compute_per_device_and_none(monkeypatch: pytest.MonkeyPatch) -> None:
    df = frame([("teacher", 0, 2.0, 2.0, 10.0, 0.1), ("s", 0, 1.0, 1.0, 10.0, 0.1)])
    gpu = df.assign(device="cuda:0", model_s=[4.0, 1.0])
    res = run(monkeypatch, pd.concat([df, gpu, df.iloc[0:1].assign(device=None)], ignore_index=True))
    got = [(r["device"], r["metric"], r["median_ratio"]) for r in res["ratios"]]
    assert got == [("cpu", "rtfx (model only)", 2.0), ("cpu", "end-to-end", 2.0),
                   ("cuda:0", "rtfx (model only)", 4.0), ("cuda:0", "end-to-end", 2.0)]
    assert run(monkeypatch, frame([("x", 0, 1.0, 1.0, 1.0, 0.1)]))["ratios"] == []


def ratio(kind: str, a: str, b: str, metric: str, med: float, per: list, wer: float | None, dev: str = "cpu") -> dict:
    return {"kind": kind, "device": dev, "a": a, "b": b, "metric": metric, "median_ratio": med, "per_repeat": per,
            "wer_diff_points": wer}


def test_format_report_lines() -> None:
    res = {"ratios": [ratio("int8/fp32", "m+int8-dynamic", "m", "model-time speed-up", 2.0, [1.25, 2.0, 2.5], 1.0),
                      ratio("batched/paper-loop", "m", "m@paper-loop", "end-to-end", 1.5, [1.5], None)],
           "tracker_overhead": {"cpu": {"method": "rapl", "pairs": 5, "pair_fractions": [0.25, 0.5, 0.0, 0.125, 1.0],
                                        "slice_share": 0.1, "window_ops_fraction": 0.5, "cpu_time_fraction": -0.005}}}
    lines = format_report(res).split("\n")
    assert lines[0] == ("int8/fp32                   cpu   m+int8-dynamic vs m: warm model-time speed-up x2.00 "
                        "(per repeat 1.25, 2.00, 2.50), WER +1.00 pt")
    assert lines[1] == "batched/paper-loop          cpu   m vs m@paper-loop: warm end-to-end x1.50 (per repeat 1.50)"
    assert lines[2] == ("tracker overhead            cpu   rapl: +25.00 % (median of 5 paired passes over 10 % of the "
                        "batches; 94 % interval +0.00 .. +100.00 %; window open/close 50.000 %; process CPU time "
                        "-0.50 %)")
    assert len(lines) == 3
    # fewer pairs than a median with an interval needs (a run from before, or --overhead-pairs 1): no percentage
    line = format_report({"ratios": [], "tracker_overhead": {"gpu": {"method": "nvml", "fraction": 0.1, "pairs": 1}}})
    assert line == ("tracker overhead            gpu   nvml: not measured (1 pair asked for; at least 5 are needed "
                    "for a median with an interval (--overhead-pairs))")
    assert format_report({"ratios": [], "tracker_overhead": {}}) == "no comparable pairs in this run"
    line = format_report({"ratios": [], "tracker_overhead": {"cpu": {"method": "m", "pairs": 2, "measured": False,
                                                                      "why": "2 pairs asked for"}}})
    assert line == "tracker overhead            cpu   m: not measured (2 pairs asked for)"


def test_teacher_table() -> None:
    rs = [ratio("vs-teacher", "slow", "t", "rtfx (model only)", 1.5, [1.5, 1.5], -0.5),
          ratio("vs-teacher", "slow", "t", "end-to-end", 1.2, [1.2], -0.5),
          ratio("vs-teacher", "fast", "t", "end-to-end", 2.5, [2.5], None),
          ratio("vs-teacher", "fast", "t", "rtfx (model only)", 3.0, [3.0, 2.0], None),
          ratio("vs-teacher", "g", "t", "rtfx (model only)", 9.0, [9.0], 0.0, dev="cuda"),
          ratio("int8/fp32", "x", "t", "rtfx (model only)", 99.0, [99.0], 0.0)]
    lines = _teacher_table(rs)
    assert lines[0] == ("vs-teacher: speed-up over the run's teacher (a random-weight arch-X+recipe: over arch-X) as "
                        "the median of per-repeat pairs (per repeat in brackets), WER difference in points "
                        "(warm, whole set); warm = lengths already run (a batch job), unseen = each repeat over "
                        "lengths this process never ran (a server)")
    assert lines[1] == f"  {'cpu':<5} {'fast':<46} vs t: warm model x3.00 (3.00, 2.00); warm e2e x2.50 (2.50)"
    assert lines[2] == (f"  {'cpu':<5} {'slow':<46} vs t: warm model x1.50 (1.50, 1.50); warm e2e x1.20 (1.20); "
                        "WER -0.50 pt")
    assert lines[3] == f"  {'cuda':<5} {'g':<46} vs t: warm model x9.00 (9.00); WER +0.00 pt"
    assert len(lines) == 4
    assert _teacher_table(rs[-1:]) == []
    only_e2e = _teacher_table([ratio("vs-teacher", "e", "t", "end-to-end", 2.0, [2.0], None),
                               ratio("vs-teacher", "f", "t", "rtfx (model only)", 0.5, [0.5], None)])
    assert only_e2e[1:] == [f"  {'cpu':<5} {'f':<46} vs t: warm model x0.50 (0.50)",
                            f"  {'cpu':<5} {'e':<46} vs t: warm e2e x2.00 (2.00)"]
    text = format_report({"ratios": rs, "tracker_overhead": {}})
    assert text.split("\n")[0].startswith("int8/fp32") and "vs-teacher:" in text and "fast" in text


def test_write(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setattr(core.results, "load_results", lambda d: frame([("x", 0, 1.0, 1.0, 1.0, 0.1)]))
    monkeypatch.setattr(core.results, "read_meta", lambda d: {"tracker_overhead": {"d": str(d)}})
    res, path = write(tmp_path)
    # NaN never equals itself: compare the JSON texts (json writes NaN as NaN both times)
    assert path == tmp_path / "ratios.json"
    assert json.dumps(json.loads(path.read_text()), sort_keys=True) == json.dumps(res, sort_keys=True)
    assert res["tracker_overhead"] == {"d": str(tmp_path)} and res["run_dir"] == str(tmp_path)
    assert path.read_text().startswith('{\n  "run_dir"')
    assert math.isnan(nan)
