"""The memory children's fork server: a forked child maps the server's resident library pages before its baseline,
so they count there (as in a spawned child, which imported them itself) and not in the variant's figure."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import child_preload, memory


def _rss_file_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/pagemap").exists(), reason="needs Linux's /proc/self/pagemap")
def test_a_forked_child_maps_the_servers_resident_library_pages_before_its_baseline() -> None:
    pages = child_preload.resident_file_pages()
    listed_kb = len(pages) * os.sysconf("SC_PAGE_SIZE") // 1024
    assert listed_kb > 50_000  # torch's and transformers' code: tens of MB at least
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what fork gave it, then what touching the list gives it
        try:
            before = _rss_file_kb()
            child_preload.touch_resident(pages)
            os.write(w, json.dumps([before, _rss_file_kb()]).encode())
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    before, after = json.loads(os.read(r, 1000))
    os.close(r)
    assert after >= 0.9 * listed_kb, (before, after, listed_kb)  # the server's resident pages, mapped in the child
    assert after - before > 0.5 * listed_kb, (before, after, listed_kb)  # fork had not mapped them


def test_children_are_forked_from_the_server_on_cpu_and_spawned_for_a_gpu() -> None:
    assert memory._child_context("cpu").get_start_method() == "forkserver"
    assert memory._child_context("cuda:0").get_start_method() == "spawn"


def test_the_fork_server_imports_what_the_loader_names() -> None:
    """The runner's loader names the modules every build imports (``preload``): the fork server imports them once,
    so a memory child starts with them (a child used to import the method registry, about 2.8 s, each time).  In a
    fresh process, so that this process's fork server (started by another test) is not the one asked."""
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    code = ("import sys\n"
            f"sys.path.insert(0, {str(tests)!r})\n"
            "from concurrent.futures import ProcessPoolExecutor\n"
            "from bench.memory import _child_context\n"
            "from helpers import is_imported\n"
            "for preload in ((), ('tabnanny',)):\n"
            "    with ProcessPoolExecutor(1, mp_context=_child_context('cpu', preload)) as ex:\n"
            "        print(ex.submit(is_imported, 'tabnanny').result())\n"
            "    import multiprocessing.forkserver as fs\n"
            "    fs._forkserver._stop()  # the next context starts a new server\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=tests.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "True"]
