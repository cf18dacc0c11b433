"""The HTML report and its CLI: self-contained, savings first, method, tables, figures, caveats."""
from __future__ import annotations

import base64
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from footprint.cli import main as footprint
from reports.html import build_report, write_report
from reports.load import load_run

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "results_small"


class _Refs(HTMLParser):
    """Every URL-bearing attribute and every tag name."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href", "srcset", "data", "action", "poster", "background") and v is not None:
                self.urls.append((tag, k, v))
            if k == "id" and v:
                self.ids.append(v)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("rep") / "report.html"
    write_report(FIXTURE, out)
    return out.read_text(encoding="utf-8")


def test_self_contained(report: str) -> None:
    p = _Refs()
    p.feed(report)
    assert "script" not in p.tags and "link" not in p.tags and "iframe" not in p.tags
    for tag, attr, url in p.urls:
        if tag == "img":
            assert url.startswith("data:image/png;base64,"), url[:60]
            assert base64.b64decode(url.split(",", 1)[1]).startswith(b"\x89PNG")
        else:
            assert url.startswith("#"), (tag, attr, url)  # in-page anchors only
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", report, re.I)
    assert "url(" not in report and "@import" not in report
    assert "Content-Security-Policy" in report and "default-src 'none'" in report
    assert sum(1 for t, _, _ in p.urls if t == "img") == 3


def test_sections_in_order(report: str) -> None:
    order = [report.index(f'<section id="{s}">') for s in ("summary", "method", "tables", "figures", "caveats")]
    assert order == sorted(order)
    p = _Refs()
    p.feed(report)
    for i in ("savings", "table1", "table1b", "table2", "table2-arch", "table3", "table4", "figure1", "figure2",
              "pareto"):
        assert i in p.ids


def test_summary_has_both_paper_figures_and_ours(report: str) -> None:
    summary = report[report.index('<section id="summary">'):report.index('<section id="method">')]
    assert "0.0019 kg / 5.4 h &times; 54 million h\n = 19 t" in summary
    assert "about 21 t" in summary
    assert "teacher &rarr; distill-L4" in summary
    assert "475 g CO&#8322;/kWh, source: CodeCarbon global average (no country given)" in summary
    assert "estimated" in summary and "measured" in summary


def test_method_and_caveats(report: str) -> None:
    method = report[report.index('<section id="method">'):report.index('<section id="tables">')]
    for s in ("Intel(R) Xeon(R) Platinum 8481C", "NVIDIA H100", "2.13.0", "sha256:3f2a9c0d", "codecarbon-offline",
              "NVML total-energy counter", "Repeats per variant and device", "Run configuration (meta.json)"):
        assert s in method, s
    cav = report[report.index('<section id="caveats">'):]
    for s in ("Synthetic corpus", "Random-weights timing", "Estimated energy", "Test fixture"):
        assert s in cav, s


def test_cpu_only_run_says_so(tmp_path: Path) -> None:
    run = load_run(FIXTURE)
    run.results = run.results[run.results["device"] == "cpu"].reset_index(drop=True)
    html = build_report(run)
    assert "No GPU in this run" in html and "no GPU in this run" in html


def test_report_without_logs_or_baseline(tmp_path: Path) -> None:
    df = pd.read_csv(FIXTURE / "results.csv")
    df[df["recipe"] != "baseline"].to_csv(tmp_path / "results.csv", index=False)
    out = write_report(tmp_path, tmp_path / "r.html")
    html = out.read_text()
    assert "No savings can be computed" in html and "Not available from this run (0 training log(s) found)" in html
    assert "about 21 t" in html  # the paper's side still stands


def test_cli_prints_the_report_path(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "report.html"
    r = subprocess.run([sys.executable, "-m", "reports", str(FIXTURE), "--out", str(out), "--hours", "1e6",
                        "--markdown", str(tmp_path / "md"), "--latex", str(tmp_path / "tex")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out)
    assert "at 1 million h" in out.read_text()
    assert sorted(p.name for p in (tmp_path / "md").iterdir())[0] == "table1.md"
    assert (tmp_path / "tex" / "table1.tex").exists()


def test_footprint_report_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert footprint(["report", str(FIXTURE), "--out", str(out)], groups=["report"]) == 0
    assert capsys.readouterr().out.strip() == str(out)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "reports", str(tmp_path / "missing")], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2
    want = f"python -m reports: error: {tmp_path / 'missing'}: no such results folder"
    assert r.stderr.strip().splitlines()[-1] == want
    r = subprocess.run([sys.executable, "-m", "reports", str(FIXTURE), "--hours", "-3"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "hours must be positive" in r.stderr
