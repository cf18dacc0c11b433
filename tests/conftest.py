"""Skips in CI: every skip is listed with its reason at the end of the run, and a skip whose reason names
something CI installs (``FOOTPRINT_CI_REQUIRE``, comma-separated words of skip reasons, set by .ci/run) fails
instead: a test CI promises to run cannot go missing silently."""
from __future__ import annotations

import os
from collections import Counter

import pytest

REQUIRE_ENV = "FOOTPRINT_CI_REQUIRE"


@pytest.fixture(autouse=True, scope="session")
def _session_accuracy_cache(tmp_path_factory):  # noqa: ANN001, ANN202
    """The session's accuracy and memory caches, for module fixtures (set up before any test's own): a run made
    there never reads or writes the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("W2V_FOOTPRINT_ACCURACY_CACHE", str(tmp_path_factory.mktemp("session-accuracy-cache")))
        mp.setenv("W2V_FOOTPRINT_MEMORY_CACHE", str(tmp_path_factory.mktemp("session-memory-cache")))
        yield


@pytest.fixture(autouse=True)
def _own_accuracy_cache(_session_accuracy_cache, tmp_path_factory, monkeypatch):  # noqa: ANN001, ANN202
    """Every test its own accuracy and memory caches (bench/accuracy_cache.py): never the user's, never another
    test's hits."""
    monkeypatch.setenv("W2V_FOOTPRINT_ACCURACY_CACHE", str(tmp_path_factory.mktemp("accuracy-cache")))
    monkeypatch.setenv("W2V_FOOTPRINT_MEMORY_CACHE", str(tmp_path_factory.mktemp("memory-cache")))


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest first: the modules marked ``slow`` start before the rest (order otherwise kept), so that under
    pytest-xdist (``-n 2 --dist loadfile``, the README's command) no long module starts last on one worker while
    the other idles."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _required() -> list[str]:
    return [w.strip().lower() for w in os.environ.get(REQUIRE_ENV, "").split(",") if w.strip()]


def _reason(rep: pytest.TestReport) -> str:
    if isinstance(rep.longrepr, tuple):
        return str(rep.longrepr[2]).removeprefix("Skipped: ")
    return str(rep.longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and not hasattr(rep, "wasxfail"):
        reason = _reason(rep)
        hit = [w for w in _required() if w in reason.lower()]
        if hit:
            rep.outcome = "failed"
            rep.longrepr = (f"skipped, but {REQUIRE_ENV} says CI provides {hit[0]!r} (.ci/run installs it): "
                            f"{reason}")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # noqa: ANN001
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if not hasattr(r, "wasxfail")]
    if not skipped:
        return
    terminalreporter.section(f"{len(skipped)} skipped, and why")
    for reason, n in sorted(Counter(_reason(r) for r in skipped).items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{n:4d}  {reason}")
