"""The results store: the schema matches ARCHITECTURE.md and reports' loader, rows are append-only and
idempotent by key, NaN becomes NULL, the CSV export and load_results round-trip."""
from __future__ import annotations

import math
import re
import sqlite3
from pathlib import Path

import pytest

from core.errors import FootprintError
from core.results import (ALL_COLUMNS, EXTRA_COLUMNS, SCHEMA_COLUMNS, ResultsStore, load_results, read_meta,
                           row_key, write_meta)

ROOT = Path(__file__).resolve().parent.parent


def test_schema_matches_architecture_md() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    block = text.split("Columns (unit-suffixed):", 1)[1].split("Stored in", 1)[0]
    cols = re.findall(r"[a-z][a-z0-9_]*", block.replace("`", " ").split('("trained"')[0] + " " +
                      block.split('"random"),', 1)[1])
    assert tuple(cols) == SCHEMA_COLUMNS
    assert not set(EXTRA_COLUMNS) & set(SCHEMA_COLUMNS)


def test_schema_matches_reports_loader() -> None:
    load = pytest.importorskip("reports.load")
    assert tuple(load.SCHEMA_COLUMNS) == SCHEMA_COLUMNS


def _row(rep: int, **kw) -> dict:  # noqa: ANN003
    r = {"schema_version": 1, "run_id": "r1", "variant": "v", "device": "cpu", "repeat": rep, "wall_s": 1.5 + rep,
         "wer": float("nan"), "energy_measured": False, "params": 315_461_792, "row_key": row_key("h", "v", "cpu", rep),
         "energy_components_j": {"cpu": 1.0}}
    r.update(kw)
    return r


def test_append_is_idempotent_and_nan_is_null(tmp_path) -> None:  # noqa: ANN001
    store = ResultsStore(tmp_path)
    assert store.append(_row(0)) is True
    assert store.append(_row(0, wall_s=99.0)) is False  # same key: ignored, never overwritten
    assert store.append(_row(1)) is True
    assert store.done_keys() == {"h|v|cpu|0|perf", "h|v|cpu|1|perf"}
    rows = store.rows()
    assert [r["wall_s"] for r in rows] == [1.5, 2.5] and rows[0]["wer"] is None
    with pytest.raises(ValueError, match="unknown result column"):
        store.append({"not_a_column": 1})
    store.put_pass("k", "accuracy", "v", "cpu", {"wer": 0.1, "variant": "payload's own"}, "t")
    assert store.get_pass("k") == {"wer": 0.1, "variant": "payload's own"}
    assert store.passes("accuracy")[0]["variant"] == "v"
    csv = store.export_csv()
    store.close()
    header = csv.read_text().splitlines()[0].split(",")
    assert tuple(header) == ALL_COLUMNS
    df = load_results(tmp_path)
    assert list(df.columns[: len(SCHEMA_COLUMNS)]) == list(SCHEMA_COLUMNS)
    assert df["params"].iloc[0] == 315_461_792 and math.isnan(df["wer"].iloc[0])
    assert df["energy_measured"].iloc[0] is False or bool(df["energy_measured"].iloc[0]) is False
    (tmp_path / "results.sqlite").unlink()  # the CSV alone loads too
    assert len(load_results(tmp_path)) == 2


def test_old_store_gains_new_columns(tmp_path) -> None:  # noqa: ANN001
    con = sqlite3.connect(tmp_path / "results.sqlite")
    con.execute("CREATE TABLE results (run_id TEXT, variant TEXT, device TEXT, repeat INTEGER, row_key TEXT)")
    con.execute("INSERT INTO results VALUES ('old', 'v', 'cpu', 0, 'old-key')")
    con.commit()
    con.close()
    store = ResultsStore(tmp_path)
    store.append(_row(3))
    assert store.done_keys() == {"old-key", "h|v|cpu|3|perf"}
    store.close()


def test_meta_roundtrip_and_errors(tmp_path) -> None:  # noqa: ANN001
    write_meta(tmp_path, {"run_id": "x", "n": 1})
    assert read_meta(tmp_path) == {"run_id": "x", "n": 1}
    (tmp_path / "meta.json").write_text("{broken")
    with pytest.raises(FootprintError, match="meta.json: invalid JSON"):
        read_meta(tmp_path)
    with pytest.raises(FootprintError, match="neither results.sqlite nor results.csv"):
        load_results(tmp_path / "empty")


def test_ratios_are_paired_per_repeat(tmp_path) -> None:  # noqa: ANN001
    from bench.ratios import compute, format_report

    store = ResultsStore(tmp_path)
    for rep, (fast, slow, q) in enumerate([(1.0, 3.0, 0.8), (2.0, 4.0, 1.0), (1.0, 2.5, 0.5)]):
        for variant, t, wer in (("m", fast, 0.10), ("m@paper-loop", slow, 0.10), ("m+int8-dynamic", q, 0.11)):
            store.append(_row(rep, variant=variant, model_s=t, e2e_s=t + 0.5, audio_s=10.0, wer=wer,
                              row_key=row_key("h", variant, "cpu", rep)))
    store.close()
    write_meta(tmp_path, {"tracker_overhead": {"cpu": {"method": "codecarbon", "fraction": 0.01, "pairs": 2}}})
    res = compute(tmp_path)
    by = {(r["kind"], r["metric"]): r for r in res["ratios"]}
    assert by[("batched/paper-loop", "rtfx (model only)")]["per_repeat"] == pytest.approx([3.0, 2.0, 2.5])
    assert by[("batched/paper-loop", "rtfx (model only)")]["median_ratio"] == pytest.approx(2.5)
    assert by[("batched/paper-loop", "rtfx (model only)")]["wer_diff_points"] == 0.0
    int8 = by[("int8/fp32", "model-time speed-up")]
    assert int8["per_repeat"] == pytest.approx([1.25, 2.0, 2.0]) and int8["wer_diff_points"] == pytest.approx(1.0)
    assert "tracker overhead" in format_report(res)
    # no teacher in this run ("m" is not a teacher name): no vs-teacher rows
    assert not [r for r in res["ratios"] if r["kind"] == "vs-teacher"]


def test_every_variant_is_paired_with_the_teacher(tmp_path) -> None:  # noqa: ANN001
    from bench.ratios import compute, format_report

    store = ResultsStore(tmp_path)
    # the machine drifts 2x between repeats: per-repeat pairs keep the true 2x of "fast" where medians would not
    for rep, scale in enumerate([1.0, 2.0, 1.0]):
        nan = float("nan")
        for variant, t, wer in (("embedded", 4.0, 0.090), ("fast", 2.0, 0.120), ("embedded@paper-loop", 6.0, 0.090),
                                ("arch-large-L12", 8.0, nan), ("arch-large-L12+int8-dynamic", 2.0, nan)):
            store.append(_row(rep, variant=variant, model_s=t * scale, e2e_s=t * scale + 1.0, audio_s=10.0, wer=wer,
                              row_key=row_key("h", variant, "cpu", rep)))
    store.close()
    res = compute(tmp_path)
    vs = {(r["a"], r["metric"]): r for r in res["ratios"] if r["kind"] == "vs-teacher"}
    # no teacher-vs-teacher, no scenario row; a random-weight arch row against its own fp32 arch, not the teacher
    assert {a for a, _ in vs} == {"fast", "arch-large-L12+int8-dynamic"}
    arch = vs[("arch-large-L12+int8-dynamic", "rtfx (model only)")]
    assert arch["b"] == "arch-large-L12" and arch["per_repeat"] == pytest.approx([4.0, 4.0, 4.0])
    assert vs[("fast", "rtfx (model only)")]["per_repeat"] == pytest.approx([2.0, 2.0, 2.0])
    assert vs[("fast", "end-to-end")]["per_repeat"] == pytest.approx([5 / 3, 9 / 5, 5 / 3])
    assert vs[("fast", "rtfx (model only)")]["wer_diff_points"] == pytest.approx(3.0)
    text = format_report(res)
    assert "fast" in text and "vs embedded: warm model x2.00 (2.00, 2.00, 2.00)" in text
    assert "WER +3.00 pt" in text


def test_autocast_ratios_pair_with_the_fp32_model_and_its_paper_loop(tmp_path) -> None:  # noqa: ANN001
    from bench.ratios import compute

    store = ResultsStore(tmp_path)
    for rep, (fp32, paper, amp) in enumerate([(2.0, 3.0, 1.0), (2.2, 4.0, 1.6)]):
        for variant, t, wer in (("embedded", fp32, 0.200), ("embedded@paper-loop", paper, 0.200),
                                ("bf16-autocast", amp, 0.201)):
            store.append(_row(rep, variant=variant, model_s=t, e2e_s=t + 0.5, audio_s=10.0, wer=wer,
                              row_key=row_key("h", variant, "cpu", rep)))
    store.close()
    by = {(r["kind"], r["metric"]): r for r in compute(tmp_path)["ratios"]}
    amp = by[("bf16-autocast/fp32", "model-time speed-up")]
    assert amp["b"] == "embedded" and amp["per_repeat"] == pytest.approx([2.0, 2.2 / 1.6])
    best = by[("batched+autocast/paper-loop", "end-to-end")]
    assert best["b"] == "embedded@paper-loop" and best["per_repeat"] == pytest.approx([3.5 / 1.5, 4.5 / 2.1])
    assert best["wer_diff_points"] == pytest.approx(0.1)
