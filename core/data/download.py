"""``footprint corpus download --subset dev-clean --out DIR``: fetch, verify and safely unpack a LibriSpeech subset.

What it guarantees:

* **Verified or nothing.**  The archive streams into a temporary file in ``DIR`` while its md5 and sha256
  are computed; a mismatch with the known checksums (``KNOWN_CHECKSUMS``; callers and tests may pass
  their own :class:`Checksums`) fails with one line naming expected and got, and the file is deleted.
  A subset with no known checksum is refused: we never install bytes we cannot verify.
* **Safe unpacking.**  Only regular files and directories are accepted; absolute names, ``..``
  components, names resolving outside the target, links (symbolic or hard: LibriSpeech has none) and
  device/FIFO members are refused with one line naming the member.  Python's ``filter="data"`` is
  applied as well where available (3.11.4+ / 3.12).
* **No partial tree.**  Members are extracted into a temporary directory inside ``DIR``; only when the
  whole archive unpacked is ``LibriSpeech/<subset>`` moved into place with one atomic ``rename``.  On
  any failure (including Ctrl-C) the temporary file and directory are removed.
* **Idempotent.**  The installed subset carries ``.footprint-download.json`` (url, checksums, bytes);
  a later run that finds it with matching checksums skips the download.  An existing subset directory
  without that record (e.g. unpacked by hand) is left untouched and the command refuses.

Checksum sources: every md5 is OpenSLR's published list for LibriSpeech
(https://www.openslr.org/resources/12/md5sum.txt); every sha256 is torchaudio's LibriSpeech table
(``_CHECKSUMS`` in ``torchaudio/datasets/librispeech.py``).
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from core.errors import FootprintError

log = logging.getLogger(__name__)

OPENSLR_URL = "https://www.openslr.org/resources/12/{subset}.tar.gz"
MARKER = ".footprint-download.json"
_CHUNK = 1 << 20
_SUBSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")  # a single safe path component
# tarfile.FilterError arrived with the extraction filters (3.11.4 / 3.10.12); without it nothing matches here.
_FilterError: type[Exception] = getattr(tarfile, "FilterError", None) or type("_NoFilterError", (Exception,), {})


@dataclass(frozen=True)
class Checksums:
    """Hex digests of an archive; ``None`` means not known (that algorithm is then not compared)."""

    md5: str | None = None
    sha256: str | None = None

    @property
    def known(self) -> bool:
        return bool(self.md5 or self.sha256)

    def mismatches(self, got: "Checksums") -> list[str]:
        """``"md5: expected X, got Y"`` for each known digest that differs."""
        out = []
        for algo in ("md5", "sha256"):
            want, have = getattr(self, algo), getattr(got, algo)
            if want and (have or "").lower() != want.lower():
                out.append(f"{algo}: expected {want.lower()}, got {have}")
        return out


KNOWN_CHECKSUMS: dict[str, Checksums] = {
    "dev-clean": Checksums(md5="42e2234ba48799c1f50f24a7926300a1",
                           sha256="76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3"),
    "dev-other": Checksums(md5="c8d0bcc9cca99d4f8b62fcc847357931",
                           sha256="12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365"),
    "test-clean": Checksums(md5="32fa31d27d2e1cad72775fee3f4849a9",
                            sha256="39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23"),
    "test-other": Checksums(md5="fb5a50374b501bb3bac4815ee91d3135",
                            sha256="d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29"),
    "train-clean-100": Checksums(md5="2a93770f6d5c6c964bc36631d331a522",
                                 sha256="d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2"),
    "train-clean-360": Checksums(md5="c0e676e450a7ff2f54aeade5171606fa",
                                 sha256="146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf"),
    "train-other-500": Checksums(md5="d1a0fd59409feb2c614ce4d30c387708",
                                 sha256="ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2"),
}


@dataclass(frozen=True)
class DownloadResult:
    subset_dir: Path
    downloaded: bool  # False when an already installed, verified copy was found
    url: str
    size_bytes: int
    md5: str
    sha256: str


def _progress(total: int | None, desc: str, enabled: bool | None):  # -> tqdm
    from tqdm import tqdm  # runtime dependency, loaded only when a download runs

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                disable=(None if enabled is None else not enabled), file=sys.stderr)


def fetch(url: str, dest_dir: Path, progress: bool | None = None,
          timeout_s: float = 60.0) -> tuple[Path, Checksums, int]:
    """Stream ``url`` into a temporary file in ``dest_dir``; return (file, md5+sha256, bytes).

    The caller owns (and must delete) the returned file.  Network failures become one-line errors and
    leave no file behind.
    """
    md5, sha = hashlib.md5(), hashlib.sha256()  # noqa: S324 - md5 is the publisher's checksum, not security
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=".download-", suffix=".tar.gz.part")
    tmp = Path(tmp_name)
    written = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "w2v-footprint"})
        with os.fdopen(fd, "wb") as sink, urllib.request.urlopen(request, timeout=timeout_s) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with _progress(total, Path(url).name or "download", progress) as bar:
                while chunk := resp.read(_CHUNK):
                    sink.write(chunk)
                    md5.update(chunk)
                    sha.update(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
            if total is not None and written != total:
                raise FootprintError(f"{url}: connection closed after {written} of {total} bytes; try again")
    except FootprintError:
        tmp.unlink(missing_ok=True)
        raise
    except urllib.error.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        raise FootprintError(f"{url}: server answered HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        tmp.unlink(missing_ok=True)
        raise FootprintError(f"{url}: cannot reach the server ({exc.reason}); "
                             "network unreachable or offline? (--url picks a mirror)") from None
    except (TimeoutError, socket.timeout):
        tmp.unlink(missing_ok=True)
        raise FootprintError(f"{url}: no data for {timeout_s:g} s; network too slow or unreachable") from None
    except http.client.IncompleteRead as exc:
        tmp.unlink(missing_ok=True)
        raise FootprintError(f"{url}: connection closed after {written + len(exc.partial)} bytes "
                             f"({exc.expected} more expected); try again") from None
    except (OSError, http.client.HTTPException) as exc:
        tmp.unlink(missing_ok=True)
        raise FootprintError(f"{url}: download failed: {' '.join(str(exc).split()) or type(exc).__name__}") from None
    except BaseException:  # Ctrl-C included: never leave a .part file behind
        tmp.unlink(missing_ok=True)
        raise
    return tmp, Checksums(md5=md5.hexdigest(), sha256=sha.hexdigest()), written


def check_member(member: tarfile.TarInfo, dest: Path) -> None:
    """Refuse anything but a plain file or directory that stays inside ``dest`` (one-line FootprintError)."""
    name = member.name
    why = None
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        why = "absolute path"
    elif ".." in PurePosixPath(name.replace("\\", "/")).parts:
        why = "'..' component (path traversal)"
    elif member.issym() or member.islnk():
        why = f"{'symbolic' if member.issym() else 'hard'} link to {member.linkname!r} (archives must hold plain files)"
    elif member.isdev():
        why = "device or FIFO"
    elif not (member.isfile() or member.isdir()):
        why = f"unsupported member type {member.type!r}"
    else:
        root = dest.resolve()
        target = (root / name).resolve()
        if target != root and root not in target.parents:
            why = "resolves outside the target directory"
    if why:
        raise FootprintError(f"unsafe archive member {name!r}: {why}; refusing to unpack")


def safe_extract(archive: Path, dest: Path) -> int:
    """Unpack a .tar.gz into ``dest`` member by member after :func:`check_member`; returns the file count.

    On error ``dest`` may hold part of the archive: callers unpack into a temporary directory.
    """
    use_filter = hasattr(tarfile, "data_filter")  # Python's own checks, when this Python has them
    files = 0
    try:
        # Stream mode: one decompression pass, members checked just before each is written.
        with tarfile.open(archive, mode="r|gz") as tar:
            for member in tar:
                check_member(member, dest)
                if use_filter:
                    tar.extract(member, dest, filter="data")
                else:  # pragma: no cover - older Pythons; check_member enforces the same rules
                    tar.extract(member, dest)
                files += member.isfile()
    except _FilterError as exc:
        raise FootprintError(f"unsafe archive member: {exc}; refusing to unpack") from None
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise FootprintError(f"{archive.name}: not a readable .tar.gz ({exc})") from None
    return files


def _read_marker(subset_dir: Path) -> dict | None:
    try:
        data = json.loads((subset_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def download_subset(subset: str, out: str | Path, url: str | None = None,
                    expected: Checksums | None = None, progress: bool | None = None,
                    timeout_s: float = 60.0) -> DownloadResult:
    """Install ``OUT/LibriSpeech/<subset>`` from the official archive (or ``url``), verified and atomically.

    ``expected`` overrides ``KNOWN_CHECKSUMS[subset]`` (tests, private mirrors).  Raises
    :class:`FootprintError` (one line) on any failure, leaving no partial tree and no temporary file.
    """
    if not _SUBSET_NAME.match(subset):
        raise FootprintError(f"{subset!r}: not a subset name (e.g. dev-clean, test-other, train-clean-100)")
    url = url or OPENSLR_URL.format(subset=subset)
    expected = expected or KNOWN_CHECKSUMS.get(subset)
    if expected is None or not expected.known:
        raise FootprintError(f"{subset}: no known md5/sha256 for this subset; refusing to install an "
                             f"unverifiable archive (known: {', '.join(KNOWN_CHECKSUMS)})")
    out = Path(out).expanduser()
    target = out / "LibriSpeech" / subset

    if target.exists():
        marker = _read_marker(target)
        recorded = Checksums(md5=(marker or {}).get("md5"), sha256=(marker or {}).get("sha256"))
        if marker is None or expected.mismatches(recorded):
            raise FootprintError(f"{target}: already exists but was not installed and verified by this command; "
                                 "remove it to download again (or run: footprint corpus check on it)")
        log.info("%s already present and verified (md5 %s); skipping the download", target, recorded.md5)
        return DownloadResult(target, False, str(marker.get("url", url)), int(marker.get("bytes", 0)),
                              str(recorded.md5), str(recorded.sha256))

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FootprintError(f"{out}: cannot create the output directory ({exc.strerror})") from None
    log.info("downloading %s -> %s", url, out)
    archive, got, size = fetch(url, out, progress=progress, timeout_s=timeout_s)
    unpack_dir: Path | None = None
    try:
        bad = expected.mismatches(got)
        if bad:
            raise FootprintError(f"{url}: checksum mismatch, {'; '.join(bad)} ({size} bytes); "
                                 "archive deleted, nothing installed")
        log.info("checksums verified (md5 %s, sha256 %s)", got.md5, got.sha256)
        unpack_dir = Path(tempfile.mkdtemp(dir=out, prefix=f".{subset}.unpack-"))
        try:
            files = safe_extract(archive, unpack_dir)
        except FootprintError as exc:
            raise FootprintError(f"{url}: {exc}") from None  # name the archive, per the one-line convention
        unpacked = unpack_dir / "LibriSpeech" / subset
        if not unpacked.is_dir():
            raise FootprintError(f"{url}: archive has no LibriSpeech/{subset}/ directory; nothing installed")
        record = {"subset": subset, "url": url, "bytes": size, **asdict(got),
                  "verified": [a for a in ("md5", "sha256") if getattr(expected, a)],
                  "files": files, "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (unpacked / MARKER).write_text(json.dumps(record, indent=1) + "\n")
        (out / "LibriSpeech").mkdir(exist_ok=True)
        # Corpus-wide notes (README.TXT, SPEAKERS.TXT, ...) are shared by all subsets: add, never overwrite.
        for extra in (unpack_dir / "LibriSpeech").iterdir():
            if extra.is_file() and not (out / "LibriSpeech" / extra.name).exists():
                os.replace(extra, out / "LibriSpeech" / extra.name)
        try:
            os.rename(unpacked, target)  # atomic on one filesystem: the tree appears complete or not at all
        except OSError as exc:
            raise FootprintError(f"{target}: cannot move the unpacked subset into place ({exc.strerror})") from None
    finally:
        archive.unlink(missing_ok=True)
        if unpack_dir is not None:
            shutil.rmtree(unpack_dir, ignore_errors=True)
    log.info("installed %s (%d files)", target, files)
    return DownloadResult(target, True, url, size, str(got.md5), str(got.sha256))


def cli_download(args: argparse.Namespace) -> int:
    """Handler of ``footprint corpus download``; prints the installed subset directory."""
    md5, sha256 = getattr(args, "md5", None), getattr(args, "sha256", None)  # optional CLI overrides
    expected = Checksums(md5=md5, sha256=sha256) if (md5 or sha256) else None
    result = download_subset(args.subset, args.out, url=args.url, expected=expected)
    if result.downloaded:
        print(f"downloaded {args.subset}: {result.size_bytes} bytes, checksums verified "
              f"(md5 {result.md5}) -> {result.subset_dir}")
    else:
        print(f"{args.subset} already present and verified: {result.subset_dir}")
    print(f"next: footprint corpus check {result.subset_dir}")
    return 0
