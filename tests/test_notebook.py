"""notebooks/results.ipynb runs top to bottom against the results fixture and shows the paper beside ours."""
from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs the test extra: pip install -e .[test]")
nbclient = pytest.importorskip("nbclient", reason="needs the test extra: pip install -e .[test]")
pytest.importorskip("ipykernel", reason="needs the test extra: pip install -e .[test]")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "results.ipynb"
FIXTURE = ROOT / "tests" / "fixtures" / "results_small"


def _text(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", ""))
            data = o.get("data", {})
            out += [data.get("text/plain", ""), data.get("text/html", ""), data.get("text/markdown", "")]
    return "\n".join(out)


def test_notebook_executes_against_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTPRINT_RUN_DIR", str(FIXTURE))
    monkeypatch.setenv("FOOTPRINT_HOURS", "54e6")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # The shipped notebook carries no outputs (clean diffs, no stale numbers).
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    text = _text(nb)
    assert "results.csv: 78 rows" in text
    assert '<table id="table1"' in text and "4433 s" in text and "2.63 %" in text
    assert "0.0019 kg / 5.4 h x 54 million h = 19 t; the paper states about 21 t" in text
    assert sum(1 for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})) == 3
