"""Checkpoints whose pickle would run code are refused, in both serialisation formats, and nothing runs."""
from __future__ import annotations

import argparse
import builtins
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from footprint.cli import main
from core.errors import FootprintError, UnsafeCheckpointError
from compress.model_io.safe_load import load_checkpoint, pickle_globals


class ShellPayload:
    """Unpickling this would run a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class ExecPayload:
    """Unpickling this would exec Python that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def _fairseq_like(payload: object) -> dict:
    # The payload hides inside an otherwise ordinary fairseq-style checkpoint.
    return {"args": argparse.Namespace(arch="wav2vec_ctc", w2v_args=argparse.Namespace(normalize=False)),
            "model": {"w2v_encoder.proj.weight": torch.zeros(32, 4)},
            "optimizer_history": [{"num_updates": 1}], "extra_state": {"val_loss": payload}}


FORMATS = {"zip": True, "legacy": False}


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("payload_cls,offender", [(ShellPayload, "posix.system"), (ExecPayload, "builtins.exec")])
def test_malicious_checkpoint_refused(tmp_path: Path, fmt: str, payload_cls: type, offender: str) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / f"evil_{fmt}.pt"
    torch.save(_fairseq_like(payload_cls(marker)), path, _use_new_zipfile_serialization=FORMATS[fmt])
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and offender in msg and "nothing was executed" in msg
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, pickle.HIGHEST_PROTOCOL])
def test_raw_pickle_refused(tmp_path: Path, protocol: int) -> None:
    """A bare pickle renamed to .pt (no torch.save framing), including STACK_GLOBAL protocols."""
    marker = tmp_path / "marker"
    path = tmp_path / "raw.pt"
    path.write_bytes(pickle.dumps({"model": ShellPayload(marker)}, protocol=protocol))
    with pytest.raises(UnsafeCheckpointError, match="posix.system"):
        load_checkpoint(path)
    assert not marker.exists()


def test_static_scan_names_globals(tmp_path: Path) -> None:
    import io

    data = pickle.dumps([ShellPayload(tmp_path / "m"), ExecPayload(tmp_path / "m")], protocol=4)
    assert pickle_globals(io.BytesIO(data)) == ["posix.system", "builtins.exec"]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_namespace_and_numpy_allowed(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "ok.pt"
    obj = _fairseq_like(np.float64(1.25))
    obj["extra_state"]["arr"] = np.arange(3, dtype=np.int64)
    torch.save(obj, path, _use_new_zipfile_serialization=FORMATS[fmt])
    out = load_checkpoint(path)
    assert isinstance(out["args"], argparse.Namespace) and out["args"].w2v_args.normalize is False
    assert out["extra_state"]["val_loss"] == 1.25 and out["extra_state"]["arr"].tolist() == [0, 1, 2]
    # The allow-list was scoped to the call: nothing is left registered in the process.
    assert argparse.Namespace not in torch.serialization.get_safe_globals()


@pytest.mark.parametrize("content,why", [(None, "no such file"), (b"", "empty file"),
                                         (b"not a checkpoint at all", "corrupt")])
def test_missing_or_corrupt(tmp_path: Path, content: bytes | None, why: str) -> None:
    path = tmp_path / "x.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(FootprintError) as err:
        load_checkpoint(path)
    assert not isinstance(err.value, UnsafeCheckpointError)
    assert why in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_truncated(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "t.pt"
    torch.save({"model": {"w": torch.ones(1000)}}, path, _use_new_zipfile_serialization=FORMATS[fmt])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FootprintError, match="corrupt"):
        load_checkpoint(path)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_cli_import_refuses_with_one_line(tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    torch.save(_fairseq_like(ShellPayload(marker)), evil, _use_new_zipfile_serialization=FORMATS[fmt])
    out_dir = tmp_path / "out"
    rc = main(["model", "import", str(evil), "--out", str(out_dir)], groups=["model"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("footprint: error:") and str(evil) in lines[0] and "posix.system" in lines[0]
    assert "Traceback" not in err
    assert not marker.exists() and not out_dir.exists()
