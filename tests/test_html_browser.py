"""Open the HTML report in headless Chromium: it renders, its tables are there, and the console stays silent.

How the console is checked: Chromium started with ``--enable-logging=stderr --v=0`` writes every console message
of the page to stderr as ``...:INFO:CONSOLE:<line>] "<message>", source: <url>``.  The report has no scripts, and its
Content-Security-Policy blocks any fetch, so ANY console line is a fault (a CSP violation means the page tried to
load something).  A control page with a remote image and a script error first proves that the detector sees such
lines with this Chromium build; without it a change of log format would pass silently.

Needs the Debian package ``chromium`` (CI: ``.ci/install-browser.sh``); skipped with that advice when absent.
Set FOOTPRINT_SCREENSHOT_DIR to keep the screenshot.
"""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from reports.html import write_report

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "results_small"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CONSOLE = re.compile(r":CONSOLE(?:\(\d+\))?(?::\d+)?\]|Uncaught ")


def _chromium() -> str | None:
    env = os.environ.get("FOOTPRINT_CHROMIUM")
    if env:
        return env
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


BROWSER = _chromium()
pytestmark = pytest.mark.skipif(BROWSER is None, reason="chromium not installed (Debian: apt-get install chromium; "
                                                        "CI runs .ci/install-browser.sh)")


def _run(tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"  # fresh profile per run: no shared state
    cmd = [str(BROWSER), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}", "--enable-logging=stderr",
           "--v=0", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE.search(line)]


def _png_info(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the decompressed pixel data): enough to tell a blank page."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(FIXTURE, tmp_path_factory.mktemp("browser") / "report.html")


def test_console_detector_sees_errors(tmp_path: Path) -> None:
    control = tmp_path / "control.html"
    control.write_text("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" "
                       "content=\"default-src 'none'; script-src 'unsafe-inline'\"></head><body>"
                       "<img src=\"http://192.0.2.1/x.png\"><script>nosuchfunction()</script></body></html>")
    r = _run(tmp_path, control.as_uri(), "--dump-dom")
    lines = _console_lines(r.stderr)
    assert any("Content Security Policy" in line for line in lines), r.stderr[-2000:]
    assert any("Uncaught" in line for line in lines), r.stderr[-2000:]


def test_report_renders_with_tables_and_a_silent_console(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    r = _run(tmp_path, report.as_uri(), f"--screenshot={shot}", "--window-size=1280,4000")
    assert shot.exists(), f"no screenshot (rc {r.returncode}): {r.stderr[-2000:]}"
    width, height, distinct = _png_info(shot.read_bytes())
    assert (width, height) == (1280, 4000)
    assert shot.stat().st_size > 50_000 and distinct > 64, "screenshot looks blank"
    assert _console_lines(r.stderr) == []
    keep = os.environ.get("FOOTPRINT_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")

    d = _run(tmp_path, report.as_uri(), "--dump-dom")
    assert d.returncode == 0, d.stderr[-2000:]
    dom = d.stdout
    for table_id, caption in (("savings", "Savings."), ("table1", "Table 1."), ("table1b", "Table 1b."),
                              ("table2", "Table 2."), ("table2-arch", "Table 2 (architecture only)."),
                              ("table3", "Table 3."), ("table4", "Table 4.")):
        m = re.search(rf'<table id="{re.escape(table_id)}"[^>]*>\s*<caption><b>{re.escape(caption)}</b>', dom)
        assert m, f"table {table_id} missing from the rendered DOM"
    assert dom.count('src="data:image/png;base64,') == 3
    assert "4433 s" in dom and "about 21 t" in dom
    assert _console_lines(d.stderr) == []
