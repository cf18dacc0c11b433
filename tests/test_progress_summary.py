"""The per-variant summary line: the same paired medians as ``bench ratios``, never over fewer pairs than it says."""
from __future__ import annotations

from types import SimpleNamespace

from bench.progress import summary_line


def _entry(variant: str) -> SimpleNamespace:
    job = SimpleNamespace(variant=variant, weights="trained", scenario=SimpleNamespace(uses_data=True))
    return SimpleNamespace(job=job, acc={"wer": 0.0897}, accuracy_source="run")


def _run(model_s: dict) -> SimpleNamespace:
    loaded = {(v, "cpu"): _entry(v) for v in ("embedded", "int8-dynamic")}
    return SimpleNamespace(loaded=loaded, jobs=[e.job for e in loaded.values()], model_s=model_s)


def test_line_waits_for_the_teachers_last_repeat() -> None:
    # the repeats rotate: int8-dynamic has run repeats 0-2, the teacher only 0-1 so far
    model_s = {("embedded", "cpu", "perf"): {0: 3.0, 1: 3.0},
               ("int8-dynamic", "cpu", "perf"): {0: 1.0, 1: 1.5, 2: 2.0}}
    run = _run(model_s)
    e = run.loaded[("int8-dynamic", "cpu")]
    assert summary_line(run, e, "cpu") is None
    model_s[("embedded", "cpu", "perf")][2] = 3.0
    assert summary_line(run, e, "cpu") == ("int8-dynamic on cpu: WER 8.97 %; x2.00 warm vs embedded "
                                           "(model time, median of 3 paired repeat(s))")


def test_final_line_says_how_many_pairs_each_scenario_has() -> None:
    model_s = {("embedded", "cpu", "perf"): {0: 3.0, 1: 3.0},
               ("int8-dynamic", "cpu", "perf"): {0: 1.0, 1: 1.5, 2: 2.0},
               ("embedded", "cpu", "unseen"): {0: 4.0, 1: 4.0, 2: 4.0},
               ("int8-dynamic", "cpu", "unseen"): {0: 2.0, 1: 2.0, 2: 2.0}}
    run = _run(model_s)
    line = summary_line(run, run.loaded[("int8-dynamic", "cpu")], "cpu", final=True)
    assert line == ("int8-dynamic on cpu: WER 8.97 %; x2.50 warm (2 pairs), x2.00 unseen (3 pairs) vs embedded "
                    "(model time, medians of paired repeats)")


def test_teacher_line_has_no_speed_up() -> None:
    run = _run({("embedded", "cpu", "perf"): {0: 3.0}})
    assert summary_line(run, run.loaded[("embedded", "cpu")], "cpu") == "embedded on cpu: WER 8.97 %"
