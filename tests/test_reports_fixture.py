"""The shipped results fixture is exactly what tools/make_results_fixture.py writes (deterministic)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "results_small"


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_fixture_regenerates_identically(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "make_results_fixture.py"), str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert _files(tmp_path) == _files(FIXTURE)
