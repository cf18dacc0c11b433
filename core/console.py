"""The console and the run log: one logging setup for every entry point and the processes they spawn.

The console shows this project's records (INFO and up; DEBUG with ``-v``) and other libraries' errors only: their
warnings are about their own internals (torchao's CUDA kernels on a CPU machine, torch deprecating a call torchao
makes, Inductor's lowering code), which a user of this suite cannot act on.  The run log (``RUN_DIR/run.log``,
:func:`run_log`) keeps every record, third-party warnings included.  Python warnings go through logging too: one
raised from this project's files is ours and shows; one from a library's files goes to the run log.

torch and transformers print through handlers of their own that do not propagate; :func:`setup` routes them
through the root logger's handlers as soon as each is imported (an import hook, so that ``footprint report``
still never imports torch), and turns transformers' progress bars off.  A spawned child (``bench/memory.py``)
calls ``setup(child=True)``: errors only on the console, everything in the run log, whose path comes through the
environment (:data:`RUN_LOG_ENV`).
"""
from __future__ import annotations

import contextlib
import importlib.abc
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

OUR_PACKAGES = ("footprint", "core", "bench", "compress", "reports", "__main__")
RUN_LOG_ENV = "FOOTPRINT_RUN_LOG"
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FILE_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
# chatty at INFO even in the run log
QUIET_LOGGERS = ("codecarbon", "urllib3", "matplotlib", "PIL", "filelock", "httpx")
# the loggers torchao's import writes to: the CUDA-only .so files it cannot load on a CPU machine, "no triton",
# and torch's pytree deprecation of the Enum registrations torchao still makes
TORCHAO_IMPORT_LOGGERS = ("torchao", "torchao.kernel.intmm", "torch.utils._pytree")
_ROOT = Path(__file__).resolve().parent.parent


class _State:
    console: logging.Handler | None = None
    file: logging.Handler | None = None
    showwarning: Any = None


_state = _State()


def is_ours(logger_name: str) -> bool:
    return logger_name.split(".", 1)[0] in OUR_PACKAGES


class ConsoleFilter(logging.Filter):
    """Ours from ``ours`` up; everyone else's from ``others`` up (ERROR: only real errors)."""

    def __init__(self, ours: int = logging.INFO, others: int = logging.ERROR) -> None:
        super().__init__()
        self.ours, self.others = ours, others

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= (self.ours if is_ours(record.name) else self.others)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a test's capture, a redirected stream)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr


def _from_our_files(filename: str) -> bool:
    if not filename or not os.path.isabs(filename):  # "<string>", "<frozen ...>": nobody's file
        return False
    path = Path(filename).resolve()
    return path.is_relative_to(_ROOT) and "site-packages" not in path.parts


def _showwarning(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
                 line: str | None = None) -> None:
    """A Python warning as a log record: ours (raised from this project's files) or ``py.warnings``."""
    if file is not None:
        _state.showwarning(message, category, filename, lineno, file, line)
        return
    text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
    name = "footprint.warnings" if _from_our_files(filename) else "py.warnings"
    logging.getLogger(name).warning("%s", text)


# -- torch, transformers and codecarbon: their own handlers, routed through ours once imported -------------
def _route_torch() -> None:
    if os.environ.get("TORCH_LOGS"):  # the user asked torch for its logs: leave them as torch prints them
        return
    try:
        from torch._logging import _internal

        names, theirs = _internal.log_registry.get_log_qnames(), _internal._is_torch_handler
    except Exception:  # noqa: BLE001 - another torch: its top logger's stream handlers
        names, theirs = {"torch"}, (lambda h: type(h) is logging.StreamHandler)
    for name in names:
        lg = logging.getLogger(name)
        for h in [h for h in lg.handlers if theirs(h)]:
            lg.removeHandler(h)
        lg.propagate = True


def _route_transformers() -> None:
    from transformers.utils import logging as tlog

    tlog.disable_default_handler()
    tlog.enable_propagation()
    tlog.disable_progress_bar()  # "Loading weights" per model, in the parent and in every memory child


def route_codecarbon() -> None:
    """Drop codecarbon's own stderr handler.  codecarbon gives its logger one at import and again in every
    ``EmissionsTracker.__init__`` (``set_logger_format``): its errors would bypass the console format and the run
    log, and a handler made while stderr was redirected writes to a closed stream later.  Call after each tracker."""
    lg = logging.getLogger("codecarbon")
    for h in [h for h in lg.handlers if type(h) is logging.StreamHandler]:
        lg.removeHandler(h)
    lg.propagate = True


_AFTER_IMPORT: dict[str, Callable[[], None]] = {"torch": _route_torch, "transformers": _route_transformers,
                                                "codecarbon": route_codecarbon}


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs a hook right after a top-level package named in ``_AFTER_IMPORT`` has been imported."""

    def __init__(self) -> None:
        self.pending = dict(_AFTER_IMPORT)

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        hook = self.pending.get(name)
        if hook is None:
            return None
        spec = next((s for f in sys.meta_path if f is not self and hasattr(f, "find_spec")
                     and (s := f.find_spec(name, path, target)) is not None), None)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        del self.pending[name]
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            _run_hook(hook)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _run_hook(hook: Callable[[], None]) -> None:
    try:
        hook()
    except Exception as exc:  # noqa: BLE001 - a quieter console is never worth a failed import
        logging.getLogger(__name__).debug("console: %s failed: %s", hook.__name__, exc)


def _route_libraries() -> None:
    finder = next((f for f in sys.meta_path if isinstance(f, _AfterImport)), None)
    if finder is None:
        finder = _AfterImport()
        sys.meta_path.insert(0, finder)
    for name in list(finder.pending):
        if name in sys.modules:
            _run_hook(finder.pending.pop(name))


# -- the setup --------------------------------------------------------------------------------------------
def setup(verbose: bool = False, child: bool = False, force: bool = False) -> None:
    """The console handler (once; replaces an earlier one), Python warnings through logging, torch's and
    transformers' output through both.  ``child``: a spawned helper process, whose console shows errors only
    (the parent says what it is doing, and its warnings) and whose records join the parent's run log.  Where another
    handler already owns the root logger (pytest's), the console is left to it unless ``force``."""
    root = logging.getLogger()
    if _state.console is not None:
        root.removeHandler(_state.console)
        _state.console = None
    if force or not [h for h in root.handlers if h is not _state.file]:
        console = _StderrHandler()
        console.setFormatter(logging.Formatter(CONSOLE_FORMAT, datefmt="%H:%M:%S"))
        # a child loads a variant the parent has loaded already: its warnings would repeat the parent's lines
        ours = logging.DEBUG if verbose else logging.ERROR if child else logging.INFO
        console.addFilter(ConsoleFilter(ours, logging.WARNING if verbose else logging.ERROR))
        root.addHandler(console)
        _state.console = console
        if _state.showwarning is None:
            _state.showwarning = warnings.showwarning
        warnings.showwarning = _showwarning
        root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if child and os.environ.get(RUN_LOG_ENV) and _state.file is None:
        _attach_file(Path(os.environ[RUN_LOG_ENV]))
    _route_libraries()


def reset() -> None:
    """Undo :func:`setup`'s console and warnings routing (tests)."""
    if _state.console is not None:
        logging.getLogger().removeHandler(_state.console)
        _state.console = None
    if _state.showwarning is not None:
        warnings.showwarning = _state.showwarning
        _state.showwarning = None
    _detach_file()


def _attach_file(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(FILE_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    logging.getLogger().addHandler(handler)
    for pkg in OUR_PACKAGES:  # our DEBUG records too; the root's level keeps other libraries' out
        logging.getLogger(pkg).setLevel(logging.DEBUG)
    _state.file = handler
    return handler


def _detach_file() -> None:
    if _state.file is not None:
        logging.getLogger().removeHandler(_state.file)
        _state.file.close()
        _state.file = None
        for pkg in OUR_PACKAGES:
            logging.getLogger(pkg).setLevel(logging.NOTSET)


@contextlib.contextmanager
def run_log(path: str | Path) -> Iterator[Path]:
    """Every record of this process, and of the children it spawns meanwhile, appended to ``path``."""
    path = Path(path)
    _detach_file()
    _attach_file(path)
    before = os.environ.get(RUN_LOG_ENV)
    os.environ[RUN_LOG_ENV] = str(path.resolve())
    try:
        yield path
    finally:
        _detach_file()
        if before is None:
            os.environ.pop(RUN_LOG_ENV, None)
        else:
            os.environ[RUN_LOG_ENV] = before


class _ToRunLog(logging.Filter):
    """Stops a record at its logger; the run log, when there is one, still gets it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _state.file is not None and record.levelno >= _state.file.level:
            _state.file.handle(record)
        return False


@contextlib.contextmanager
def quiet_import(loggers: tuple[str, ...] = TORCHAO_IMPORT_LOGGERS) -> Iterator[None]:
    """Silence what ``loggers`` say while a library is imported, at the source (the run log keeps it): for
    import-time notices nobody here can act on, whether or not :func:`setup` ran (tests, library use)."""
    stop = _ToRunLog()
    targets = [logging.getLogger(n) for n in loggers]
    for lg in targets:
        lg.addFilter(stop)
    try:
        yield
    finally:
        for lg in targets:
            lg.removeFilter(stop)
