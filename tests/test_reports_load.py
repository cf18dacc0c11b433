"""reports.load: the results contract, SQLite and CSV, one-line errors, training logs; and no torch anywhere."""
from __future__ import annotations

import csv
import json
import pkgutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.errors import FootprintError
from reports.load import SCHEMA_COLUMNS, find_train_logs, load_results, load_run, read_train_log

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "results_small"
REPORT_MODULES = ("reports", "reports.paper", "reports.load", "reports.stats", "reports.render", "reports.tables",
                  "reports.savings", "reports.figures", "reports.html", "reports.deploy", "reports.method",
                  "reports.ledger", "footprint.commands.report")


def test_reports_never_import_torch() -> None:
    found = {f"reports.{m.name}" for m in pkgutil.iter_modules([str(ROOT / "reports")]) if m.name != "__main__"}
    assert found <= set(REPORT_MODULES), f"add {sorted(found - set(REPORT_MODULES))} to REPORT_MODULES"
    code = (f"import {', '.join(REPORT_MODULES)}; import sys; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'transformers' not in sys.modules, 'transformers imported'")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_report_cli_module_is_stdlib_only() -> None:
    code = ("import sys, footprint.commands.report; "
            "heavy = {'pandas', 'numpy', 'matplotlib', 'torch'} & set(sys.modules); assert not heavy, heavy")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_fixture_follows_the_schema_exactly() -> None:
    with (FIXTURE / "results.csv").open(newline="") as fh:
        header = next(csv.reader(fh))
    from core.schema import EXTRA_COLUMNS  # the contract's columns, then only extras the schema knows (making_*)
    assert tuple(header[:len(SCHEMA_COLUMNS)]) == SCHEMA_COLUMNS
    assert set(header[len(SCHEMA_COLUMNS):]) <= set(EXTRA_COLUMNS)


def test_schema_agrees_with_bench_results() -> None:
    results = pytest.importorskip("core.results", reason="core.results not in this checkout")
    assert tuple(results.SCHEMA_COLUMNS) == SCHEMA_COLUMNS


def test_load_csv_fixture() -> None:
    run = load_run(FIXTURE)
    df = run.results
    assert run.source.name == "results.csv"
    assert len(df) == 78 and set(df["device"]) == {"cpu", "cuda"}
    assert df["energy_measured"].dtype == "boolean"
    assert df.loc[df["device"] == "cuda", "energy_measured"].all()
    assert not df.loc[df["device"] == "cpu", "energy_measured"].any()
    assert run.meta["run_id"] == "fixture-0001"
    # Random-weight rows have no WER.
    assert df.loc[df["weights"] == "random", "wer"].isna().all()


def test_sqlite_preferred_over_csv(tmp_path: Path) -> None:
    df = pd.read_csv(FIXTURE / "results.csv")
    con = sqlite3.connect(tmp_path / "results.sqlite")
    df.head(10).to_sql("results", con, index=False)
    con.close()
    (tmp_path / "results.csv").write_text("garbage,not,used\n")
    out = load_results(tmp_path)
    assert len(out) == 10


def test_sqlite_written_by_bench_store_loads(tmp_path: Path) -> None:
    results = pytest.importorskip("core.results", reason="core.results not in this checkout")
    rows = pd.read_csv(FIXTURE / "results.csv").head(4).to_dict("records")
    store = results.ResultsStore(tmp_path)
    for r in rows:
        r = {k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in r.items()}
        r["row_key"] = f"h|{r['variant']}|{r['device']}|{r['repeat']}|perf"
        r["scenario"] = "batched"
        store.append(r)
    store.close()
    df = load_results(tmp_path)
    assert len(df) == 4 and df["energy_measured"].dtype == "boolean"


def test_duplicate_rows_dropped(tmp_path: Path) -> None:
    df = pd.read_csv(FIXTURE / "results.csv")
    pd.concat([df, df.head(3)]).to_csv(tmp_path / "results.csv", index=False)
    assert len(load_results(tmp_path)) == len(df)


def test_scenarios_are_distinct_rows(tmp_path: Path) -> None:
    df = pd.read_csv(FIXTURE / "results.csv")
    both = pd.concat([df.assign(scenario="batched"), df.assign(scenario="paper-loop", e2e_s=df["e2e_s"] * 3)])
    both.to_csv(tmp_path / "results.csv", index=False)
    assert len(load_results(tmp_path)) == 2 * len(df)


@pytest.mark.parametrize("content, problem", [
    ("", "unreadable CSV"),
    ("a,b\n1,2\n", "missing column(s) variant, recipe, device, repeat"),
    (",".join(SCHEMA_COLUMNS) + "\n", "no rows"),
])
def test_bad_csv_is_one_line_naming_the_file(tmp_path: Path, content: str, problem: str) -> None:
    (tmp_path / "results.csv").write_text(content)
    with pytest.raises(FootprintError) as exc:
        load_results(tmp_path)
    msg = str(exc.value)
    assert "\n" not in msg and str(tmp_path / "results.csv") in msg and problem in msg


def test_missing_run_dir_and_missing_results(tmp_path: Path) -> None:
    with pytest.raises(FootprintError, match="no such results folder"):
        load_results(tmp_path / "nope")
    with pytest.raises(FootprintError, match="neither results.sqlite nor results.csv"):
        load_results(tmp_path)


def test_bad_sqlite(tmp_path: Path) -> None:
    (tmp_path / "results.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(FootprintError) as exc:
        load_results(tmp_path)
    assert "results.sqlite" in str(exc.value) and "\n" not in str(exc.value)


def test_sqlite_without_results_table(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "results.sqlite")
    con.execute("CREATE TABLE other (x)")
    con.commit()
    con.close()
    with pytest.raises(FootprintError, match="no results table"):
        load_results(tmp_path)


def test_bad_meta_json(tmp_path: Path) -> None:
    (tmp_path / "results.csv").write_bytes((FIXTURE / "results.csv").read_bytes())
    (tmp_path / "meta.json").write_text("{oops")
    with pytest.raises(FootprintError, match="meta.json: invalid JSON"):
        load_run(tmp_path)
    (tmp_path / "meta.json").unlink()
    assert load_run(tmp_path).meta == {}  # missing meta.json: a warning, not an error


def test_train_logs_found_with_init_and_hours() -> None:
    logs = {t.name: t for t in load_run(FIXTURE).train_logs}
    assert set(logs) == {"distill-L4", "distill-L4-last", "distill-L4-quarter"}
    assert logs["distill-L4"].init == "alternate"          # from variant.json
    assert logs["distill-L4-last"].init == "last"          # from the folder name
    assert logs["distill-L4"].train_hours == 2.0
    assert logs["distill-L4-last"].train_hours == 2.0      # audio_hours at the end of epoch 1
    assert logs["distill-L4-quarter"].train_hours == 0.5
    assert list(logs["distill-L4"].per_epoch["epoch"]) == list(range(1, 11))


def test_train_log_beside_model_path(tmp_path: Path) -> None:
    student = tmp_path / "elsewhere" / "s1"
    student.mkdir(parents=True)
    (student / "train_log.csv").write_text("epoch,dev_wer\n1,0.5\n2,0.4\n")
    df = pd.DataFrame({"model_path": [str(student)]})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    logs = find_train_logs(run_dir, df)
    assert [t.name for t in logs] == ["s1"] and logs[0].train_hours is None


def test_bad_train_log(tmp_path: Path) -> None:
    p = tmp_path / "train_log.csv"
    p.write_text("step,loss\n1,2\n")
    with pytest.raises(FootprintError, match="missing column"):
        read_train_log(p)
    (tmp_path / "variant.json").write_text("[")
    p.write_text("epoch,dev_wer\n1,0.5\n")
    with pytest.raises(FootprintError, match="variant.json: invalid JSON"):
        read_train_log(p)


def test_meta_is_plain_json() -> None:
    assert json.loads((FIXTURE / "meta.json").read_text())["fixture"].startswith("made-up numbers")


def _log(folder: Path, wer: float = 0.5, variant: dict | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train_log.csv").write_text(f"epoch,dev_wer,audio_hours\n1,{wer},1.0\n2,{wer / 2},2.0\n")
    if variant is not None:
        (folder / "variant.json").write_text(json.dumps(variant))


def test_students_beside_the_benchmarked_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    students = tmp_path / "students"
    # compress's variant.json: the init lives in the first stage's config.
    _log(students / "distill-L4", variant={"recipe": "distill-L4", "stages": [
        {"name": "distill-L4", "config": {"init": "alternate", "layers": 4}}]})
    _log(students / "distill-L4-last")             # not benchmarked, found as a sibling
    _log(tmp_path / "env" / "distill-L4-half")     # found through $W2V_FOOTPRINT_STUDENTS
    monkeypatch.setenv("W2V_FOOTPRINT_STUDENTS", str(tmp_path / "env"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    df = pd.DataFrame({"model_path": [str(students / "distill-L4"), None]})
    logs = {t.name: t for t in find_train_logs(run_dir, df)}
    assert set(logs) == {"distill-L4", "distill-L4-last", "distill-L4-half"}
    assert logs["distill-L4"].init == "alternate" and logs["distill-L4"].recipe == "distill-L4"
    assert logs["distill-L4-last"].init == "last"


def test_teacher_log_is_not_a_student(tmp_path: Path) -> None:
    _log(tmp_path / "teacher", variant={"recipe": "baseline"})
    (t,) = find_train_logs(tmp_path)
    assert not t.is_student


def test_explicit_log_paths(tmp_path: Path) -> None:
    _log(tmp_path / "a" / "s1")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert [t.name for t in find_train_logs(run_dir, extra=[tmp_path / "a"])] == ["s1"]
    with pytest.raises(FootprintError, match="no such training log"):
        find_train_logs(run_dir, extra=[tmp_path / "nope.csv"])


def test_train_hours_from_cumulative_audio_hours(tmp_path: Path) -> None:
    p = tmp_path / "s" / "train_log.csv"
    p.parent.mkdir()
    p.write_text("epoch,step,dev_wer,audio_hours\n0.5,10,0.9,0.25\n1,20,0.6,0.5\n1.5,30,0.5,0.75\n")
    assert read_train_log(p).train_hours == pytest.approx(0.5)
    p.write_text("epoch,dev_wer,audio_hours\n1,0.9,3.0\n2,0.6,3.0\n")  # a constant column: the set size
    assert read_train_log(p).train_hours == pytest.approx(3.0)
