"""``footprint corpus download`` against tiny archives served from 127.0.0.1 (never the internet)."""
from __future__ import annotations

import hashlib
import http.server
import io
import socket
import tarfile
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Iterator

import pytest

from footprint.cli import main
from core.data import download as dl
from core.data.download import Checksums, download_subset, safe_extract
from core.errors import FootprintError

GOOD_MEMBERS = {
    "LibriSpeech/README.TXT": b"LibriSpeech ASR corpus (tiny test copy)\n",
    "LibriSpeech/dev-clean/84/121123/84-121123.trans.txt": b"84-121123-0000 GO DO YOU HEAR\n",
    "LibriSpeech/dev-clean/84/121123/84-121123-0000.flac": b"not really flac, the downloader does not care",
}


def make_tar(path: Path, members: dict[str, bytes], specials: list[tarfile.TarInfo] = ()) -> Checksums:
    """Write a .tar.gz with regular ``members`` plus raw ``specials`` (links, devices...); return its checksums."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in specials:
            tar.addfile(info)
    raw = path.read_bytes()
    return Checksums(md5=hashlib.md5(raw).hexdigest(), sha256=hashlib.sha256(raw).hexdigest())


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    hits: list[str]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.hits.append(self.path)
        if self.path == "/short.tar.gz":  # announces more bytes than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + b"\0" * 100)
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@dataclass
class Server:
    root: Path
    base: str
    hits: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    www = tmp_path / "www"
    www.mkdir()
    hits: list[str] = []
    handler = type("Handler", (_QuietHandler,), {"hits": hits})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(www)))
    # A short poll interval keeps shutdown() (and so each test) fast.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield Server(www, f"http://127.0.0.1:{httpd.server_address[1]}", hits)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["corpus", "download", *args], groups=["corpus"])
    out, err = capsys.readouterr()
    return code, out, err


def leftovers(out: Path) -> list[str]:
    """Everything under ``out`` (relative paths): temp files and partial trees would show here."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")) if out.exists() else []


def test_known_checksums_match_openslr_and_torchaudio() -> None:
    assert dl.KNOWN_CHECKSUMS["dev-clean"] == Checksums(
        md5="42e2234ba48799c1f50f24a7926300a1",
        sha256="76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3")
    assert dl.KNOWN_CHECKSUMS["dev-other"].md5 == "c8d0bcc9cca99d4f8b62fcc847357931"
    assert dl.OPENSLR_URL.format(subset="dev-clean") == "https://www.openslr.org/resources/12/dev-clean.tar.gz"


def test_download_verifies_unpacks_and_then_skips(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    sums = make_tar(server.root / "dev-clean.tar.gz", GOOD_MEMBERS)
    monkeypatch.setitem(dl.KNOWN_CHECKSUMS, "dev-clean", sums)
    out = tmp_path / "data"
    code, stdout, err = run(capsys, "--subset", "dev-clean", "--out", str(out), "--url", server.url("dev-clean.tar.gz"))
    assert code == 0, err
    subset = out / "LibriSpeech" / "dev-clean"
    assert (subset / "84" / "121123" / "84-121123-0000.flac").read_bytes() == GOOD_MEMBERS[
        "LibriSpeech/dev-clean/84/121123/84-121123-0000.flac"]
    assert (out / "LibriSpeech" / "README.TXT").exists()
    assert f"md5 {sums.md5}" in stdout and str(subset) in stdout
    assert leftovers(out) == sorted([
        "LibriSpeech", "LibriSpeech/README.TXT", "LibriSpeech/dev-clean", f"LibriSpeech/dev-clean/{dl.MARKER}",
        "LibriSpeech/dev-clean/84", "LibriSpeech/dev-clean/84/121123",
        "LibriSpeech/dev-clean/84/121123/84-121123.trans.txt", "LibriSpeech/dev-clean/84/121123/84-121123-0000.flac"])
    assert server.hits == ["/dev-clean.tar.gz"]
    # Second run: present and verified, nothing fetched.
    code, stdout, _ = run(capsys, "--subset", "dev-clean", "--out", str(out), "--url", server.url("dev-clean.tar.gz"))
    assert code == 0 and "already present and verified" in stdout
    assert server.hits == ["/dev-clean.tar.gz"]


@pytest.mark.parametrize("wrong", ["md5", "sha256"])
def test_wrong_checksum_fails_in_one_line_and_leaves_nothing(wrong: str, server: Server, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    real = make_tar(server.root / "dev-clean.tar.gz", GOOD_MEMBERS)
    bogus = {"md5": "0" * 32, "sha256": "f" * 64}[wrong]
    expected = Checksums(md5=bogus if wrong == "md5" else real.md5, sha256=bogus if wrong == "sha256" else real.sha256)
    monkeypatch.setitem(dl.KNOWN_CHECKSUMS, "dev-clean", expected)
    out = tmp_path / "data"
    code, stdout, err = run(capsys, "--subset", "dev-clean", "--out", str(out), "--url", server.url("dev-clean.tar.gz"))
    assert code == 2 and stdout == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"{wrong}: expected {bogus}, got {getattr(real, wrong)}" in err
    assert leftovers(out) == []


def test_path_traversal_archive_is_refused(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    members = dict(GOOD_MEMBERS)
    members["../evil"] = b"pwned"
    sums = make_tar(server.root / "dev-clean.tar.gz", members)
    out = tmp_path / "data"
    with pytest.raises(FootprintError, match=r"unsafe archive member '\.\./evil'"):
        download_subset("dev-clean", out, url=server.url("dev-clean.tar.gz"), expected=sums, progress=False)
    assert not (tmp_path / "evil").exists() and not (out.parent / "evil").exists()
    assert leftovers(out) == []
    # The same through the CLI (checksums right, so the refusal comes from the unpacker): one line, exit 2.
    monkeypatch.setitem(dl.KNOWN_CHECKSUMS, "dev-clean", sums)
    code, stdout, err = run(capsys, "--subset", "dev-clean", "--out", str(out), "--url", server.url("dev-clean.tar.gz"))
    assert code == 2 and stdout == "" and len(err.strip().splitlines()) == 1
    assert "unsafe archive member '../evil'" in err and "Traceback" not in err
    assert leftovers(out) == [] and not (tmp_path / "evil").exists()


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize("members, specials, why", [
    ({"/etc/evil": b"x"}, [], "absolute path"),
    ({"LibriSpeech/dev-clean/../../evil": b"x"}, [], "'..'"),
    ({}, [_special("LibriSpeech/dev-clean/link", tarfile.SYMTYPE, "/etc/passwd")], "symbolic link"),
    ({}, [_special("LibriSpeech/dev-clean/up", tarfile.SYMTYPE, "../../..")], "symbolic link"),
    ({}, [_special("LibriSpeech/dev-clean/hard", tarfile.LNKTYPE, "../../outside")], "hard link"),
    ({}, [_special("LibriSpeech/dev-clean/null", tarfile.CHRTYPE)], "device"),
    ({}, [_special("LibriSpeech/dev-clean/pipe", tarfile.FIFOTYPE)], "device or FIFO"),
])
def test_unsafe_members_are_refused(members: dict[str, bytes], specials: list[tarfile.TarInfo], why: str,
                                    tmp_path: Path) -> None:
    archive = tmp_path / "bad.tar.gz"
    make_tar(archive, {**GOOD_MEMBERS, **members}, specials)
    dest = tmp_path / "unpack"
    dest.mkdir()
    with pytest.raises(FootprintError, match="unsafe archive member") as info:
        safe_extract(archive, dest)
    assert why in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "evil").exists()


def test_archive_without_the_subset_installs_nothing(server: Server, tmp_path: Path) -> None:
    sums = make_tar(server.root / "x.tar.gz", {"LibriSpeech/dev-other/1/2/1-2.trans.txt": b"1-2-0000 HI\n"})
    out = tmp_path / "data"
    with pytest.raises(FootprintError, match="no LibriSpeech/dev-clean/"):
        download_subset("dev-clean", out, url=server.url("x.tar.gz"), expected=sums, progress=False)
    assert leftovers(out) == []


def test_network_errors_are_one_line(server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    code, _, err = run(capsys, "--out", str(out), "--url", f"http://127.0.0.1:{dead}/dev-clean.tar.gz")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "cannot reach the server" in err
    code, _, err = run(capsys, "--out", str(out), "--url", server.url("missing.tar.gz"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "HTTP 404" in err
    code, _, err = run(capsys, "--out", str(out), "--url", server.url("short.tar.gz"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "connection closed after" in err
    assert leftovers(out) == []


def test_unverifiable_or_unsafe_subset_is_refused_before_any_request(server: Server, tmp_path: Path) -> None:
    make_tar(server.root / "mystery.tar.gz", GOOD_MEMBERS)
    with pytest.raises(FootprintError, match="no known md5/sha256"):
        download_subset("mystery", tmp_path / "d", url=server.url("mystery.tar.gz"), progress=False)
    with pytest.raises(FootprintError, match="not a subset name"):
        download_subset("../dev-clean", tmp_path / "d", url=server.url("mystery.tar.gz"), progress=False)
    assert server.hits == [] and not (tmp_path / "d").exists()


def test_existing_unverified_subset_is_left_alone(server: Server, tmp_path: Path) -> None:
    sums = make_tar(server.root / "dev-clean.tar.gz", GOOD_MEMBERS)
    mine = tmp_path / "data" / "LibriSpeech" / "dev-clean"
    mine.mkdir(parents=True)
    (mine / "keep.txt").write_text("user data")
    with pytest.raises(FootprintError, match="already exists but was not installed"):
        download_subset("dev-clean", tmp_path / "data", url=server.url("dev-clean.tar.gz"), expected=sums,
                        progress=False)
    assert (mine / "keep.txt").read_text() == "user data" and server.hits == []
