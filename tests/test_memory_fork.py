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
