"""The console shows our records and other libraries' errors only; the run log keeps everything (core/console.py)."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from core import console

ROOT = Path(__file__).resolve().parent.parent
OUR_FILE = str(ROOT / "bench" / "not_a_module.py")  # no source line to quote
THIRD_PARTY_FILE = "/venv/lib/python3.11/site-packages/torch/_inductor/mkldnn_lowerings.py"


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    root = logging.getLogger()
    level = root.level
    monkeypatch.delenv(console.RUN_LOG_ENV, raising=False)
    monkeypatch.delenv("TORCH_LOGS", raising=False)
    yield console
    console.reset()
    root.setLevel(level)


def _noise() -> None:
    """What a run's libraries say: torchao's import, torch's pytree, Inductor's warnings; one real error."""
    logging.getLogger("torchao").warning("Failed to load /x/torchao/_C_mxfp8.so: Could not load this library")
    logging.getLogger("torchao.kernel.intmm").warning("Warning: Detected no triton")
    logging.getLogger("torch.utils._pytree").warning("register_constant() on Enum subclasses is deprecated")
    warnings.warn_explicit("To copy construct from a tensor, use sourceTensor.detach().clone()", UserWarning,
                           THIRD_PARTY_FILE, 805)
    logging.getLogger("codecarbon").error("a real error from a library")


def test_ours_on_the_console_theirs_in_the_run_log(fresh, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import codecarbon  # noqa: F401 - imported first: its own stderr handler must be routed through ours too
    import torch  # noqa: F401 - imported: setup routes torch's own handler through the root logger

    fresh.setup(force=True)
    with fresh.run_log(tmp_path / "run" / "run.log") as path:
        assert os.environ[console.RUN_LOG_ENV] == str(path.resolve())  # what a spawned child appends to
        logging.getLogger("bench.energy").warning("energy meter rapl unavailable on cpu")
        logging.getLogger("footprint.run").info("step 1/4: data")
        logging.getLogger("compress.methods.quantize").debug("a detail for the log file")
        warnings.warn_explicit("a warning raised in our code", UserWarning, OUR_FILE, 1)
        _noise()
    assert console.RUN_LOG_ENV not in os.environ
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" ", 1)[1] for line in err[:3]] == [
        "WARNING bench.energy: energy meter rapl unavailable on cpu", "INFO footprint.run: step 1/4: data",
        f"WARNING footprint.warnings: {OUR_FILE}:1: UserWarning: a warning raised in our code"]
    assert [line.split(" ", 1)[1] for line in err[3:]] == ["ERROR codecarbon: a real error from a library"]
    text = path.read_text()
    for said in ("rapl unavailable", "step 1/4", "DEBUG compress.methods.quantize: a detail", "our code",
                 "WARNING torchao: Failed to load", "WARNING torchao.kernel.intmm: Warning: Detected no triton",
                 "WARNING torch.utils._pytree: register_constant()",
                 f"WARNING py.warnings: {THIRD_PARTY_FILE}:805: UserWarning: To copy construct",
                 "ERROR codecarbon: a real error"):
        assert said in text, said
    # torch's own stderr handler is gone; its loggers propagate to ours
    from torch._logging import _internal

    assert not [h for h in logging.getLogger("torch").handlers if _internal._is_torch_handler(h)]
    assert logging.getLogger("torch").propagate


def test_verbose_shows_library_warnings_and_our_debug(fresh, capsys: pytest.CaptureFixture) -> None:
    fresh.setup(verbose=True, force=True)
    logging.getLogger("compress.methods.quantize").debug("a detail")
    _noise()
    err = capsys.readouterr().err
    assert "DEBUG compress.methods.quantize: a detail" in err and "Detected no triton" in err


def test_child_shows_errors_and_joins_the_run_log(fresh, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "run.log"
    monkeypatch.setenv(console.RUN_LOG_ENV, str(path))  # set by the parent's run_log, inherited by a spawned child
    fresh.setup(child=True, force=True)
    logging.getLogger("compress.methods.registry").info("applying int8-dynamic")  # the parent says what it does
    logging.getLogger("compress.methods.quantize").warning("bf16: positional convolutions run in fp32")  # the
    # parent, loading the same variant, said it already
    logging.getLogger("bench.memory").error("the child cannot load the variant")
    _noise()
    err = [line.split(" ", 1)[1] for line in capsys.readouterr().err.splitlines()]
    assert err == ["ERROR bench.memory: the child cannot load the variant",
                   "ERROR codecarbon: a real error from a library"]
    fresh.reset()
    text = path.read_text()
    assert "INFO compress.methods.registry: applying int8-dynamic" in text and "Failed to load" in text
    assert "WARNING compress.methods.quantize: bf16: positional" in text


def test_quiet_import_stops_torchao_at_the_source(fresh, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with console.quiet_import():  # no run log: said nowhere
        logging.getLogger("torchao").warning("Failed to load a.so")
    with console.run_log(tmp_path / "run.log") as path, console.quiet_import():
        logging.getLogger("torchao.kernel.intmm").warning("Detected no triton")
        logging.getLogger("torch.utils._pytree").warning("register_constant() is deprecated")
        logging.getLogger("bench.x").warning("ours still shows")
    logging.getLogger("torchao").warning("after the import: as any library's record")
    assert [r.getMessage() for r in caplog.records] == ["ours still shows",
                                                        "after the import: as any library's record"]
    text = path.read_text()
    assert "Detected no triton" in text and "register_constant()" in text and "Failed to load" not in text


def test_after_import_hook_runs_once_the_package_is_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    pkg = tmp_path / "console_fake_lib"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("EXECUTED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []
    finder = console._AfterImport()
    finder.pending = {"console_fake_lib": lambda: seen.append(sys.modules["console_fake_lib"].EXECUTED)}
    sys.meta_path.insert(0, finder)
    try:
        import console_fake_lib  # noqa: F401
    finally:
        sys.meta_path.remove(finder)
        sys.modules.pop("console_fake_lib", None)
    assert seen == [True] and finder.pending == {}


def test_a_real_torchao_import_says_nothing_on_the_console(tmp_path: Path) -> None:
    pytest.importorskip("torchao")
    code = ("from core import console; console.setup()\n"
            "import logging, compress.methods.int8_inductor as m\n"
            "m.int8_inductor_missing()\n"
            "import torchao.quantization, transformers.utils.logging as t\n"
            "assert not t.is_progress_bar_enabled()\n"
            "logging.getLogger('torch.utils._pytree').warning('after the import: through our handlers')\n"
            "logging.getLogger('footprint.run').info('ours')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TORCH_LOGS", None)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert [line.split(" ", 1)[1] for line in done.stderr.splitlines()] == ["INFO footprint.run: ours"]


def test_a_codecarbon_tracker_does_not_bring_its_own_handler_back(fresh) -> None:  # noqa: ANN001
    """codecarbon adds a stderr handler to its logger in every tracker's __init__, not only at import: one made while
    stderr was redirected (a test's capture, a daemon) would later write to a closed stream."""
    from bench.energy.codecarbon import CodeCarbonMeter

    fresh.setup(force=True)
    meter = CodeCarbonMeter(measure_power_secs=60)
    meter.open()
    try:
        lg = logging.getLogger("codecarbon")
        assert [h for h in lg.handlers if type(h) is logging.StreamHandler] == [] and lg.propagate
    finally:
        meter.close()
