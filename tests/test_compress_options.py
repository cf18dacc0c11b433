"""Every option of every ``footprint compress`` command is checked before a model is built or a file written:
a bad value is exactly one stderr line naming the option, exit 2, no traceback, no output folder.

The cases run the real CLI in this process (``footprint.cli.main``; argparse's own errors exit through
SystemExit); one case runs it in a fresh process, where import-time chatter on stderr would show."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import save_tiny_model

ROOT = Path(__file__).resolve().parent.parent
NO = "/nonexistent/footprint-test"
TRAINING = ("distill", "prune-structured")

# (command, extra argv, the option the one line must name); MODEL / FILE / OUT are filled in per test:
# MODEL a tiny saved model (7 conv layers, 2 transformer layers of 2 heads and 64 neurons), FILE a plain file.
CASES: list[tuple[str, list[str], str]] = [
    *[(cmd, args, flag) for cmd in TRAINING for args, flag in [
        (["--model", NO], "--model"), (["--model", "no-such-recipe"], "--model"), (["--out", "FILE"], "--out"),
        (["--out", "FILE/sub"], "--out"), (["--data", NO], "--data"), (["--data", "embedded:test-other"], "--data"),
        (["--data", "FILE"], "--data"), (["--hours-train", "0"], "--hours-train"), (["--val-data", NO], "--val-data"),
        (["--val-utterances", "-1"], "--val-utterances"), (["--data-fraction", "1.5"], "--data-fraction"),
        (["--data-fraction", "0"], "--data-fraction"), (["--epochs", "0"], "--epochs"),
        (["--epochs", "abc"], "--epochs"), (["--lr", "0"], "--lr"), (["--lr", "nan"], "--lr"),
        (["--lr", "inf"], "--lr"), (["--warmup-epochs", "-1"], "--warmup-epochs"),
        (["--temperature", "0"], "--temperature"), (["--feature-penalty", "-1"], "--feature-penalty"),
        (["--ctc-weight", "-0.5"], "--ctc-weight"), (["--batch-seconds", "0"], "--batch-seconds"),
        (["--grad-clip", "-1"], "--grad-clip"), (["--seed", "-1"], "--seed"), (["--device", "gpu"], "--device"),
        (["--device", "cuda:x"], "--device"), (["--amp", "fp8"], "--amp"), (["--threads", "0"], "--threads"),
        (["--cache-dir", "FILE"], "--cache-dir"), (["--checkpoint-minutes", "-1"], "--checkpoint-minutes"),
        (["--checkpoint-steps", "0"], "--checkpoint-steps"), (["--max-minutes", "0"], "--max-minutes"),
        (["--max-steps", "0"], "--max-steps"), (["--save-dtype", "int8"], "--save-dtype"),
        (["--layerdrop", "1.5"], "--layerdrop"), (["--mask-time-prob", "-0.1"], "--mask-time-prob"),
    ]],
    ("distill", ["--layers", "0"], "--layers"),
    ("distill", ["--layers", "3"], "--layers"),  # the tiny model has 2
    ("distill", ["--init", "middle"], "--init"),
    ("distill", ["--student-arch", "maxpool-convX"], "--student-arch"),
    ("distill", ["--student-arch", "resnet"], "--student-arch"),
    ("distill", ["--student-arch", "maxpool-conv9"], "--student-arch"),
    ("distill", ["--init-from", NO], "--init-from"),
    ("distill", ["--init-from", "int8-dynamic"], "--init-from"),
    ("prune-structured", ["--flops-keep", "0"], "--flops-keep"),
    ("prune-structured", ["--flops-keep", "1.5"], "--flops-keep"),
    ("prune-structured", ["--conv-keep", "0"], "--conv-keep"),
    ("prune-structured", ["--conv-keep", "2"], "--conv-keep"),
    ("prune-structured", ["--conv-layers", "9"], "--conv-layers"),
    ("prune-structured", ["--conv-layers", "6"], "--conv-layers"),  # the last conv feeds no other conv
    ("prune-structured", ["--conv-layers", "-1"], "--conv-layers"),
    ("prune-structured", ["--conv-layers", "a,b"], "--conv-layers"),
    ("prune-structured", ["--conv-layers", "0,0"], "--conv-layers"),
    ("prune-structured", ["--conv-layers", ","], "--conv-layers"),
    ("prune-structured", ["--min-heads", "0"], "--min-heads"),
    ("prune-structured", ["--min-heads", "3"], "--min-heads"),
    ("prune-structured", ["--min-ffn", "0"], "--min-ffn"),
    ("prune-structured", ["--min-ffn", "65"], "--min-ffn"),
    ("prune-structured", ["--calibration-utterances", "0"], "--calibration-utterances"),
    ("quantize", ["--model", NO], "--model"),
    ("quantize", ["--model", "no-such-recipe"], "--model"),
    ("quantize", ["--out", "FILE"], "--out"),
    ("quantize", ["--method", "int4"], "--method"),
    ("quantize", ["--calibration-data", NO], "--calibration-data"),
    ("quantize", ["--calibration-utterances", "0"], "--calibration-utterances"),
    ("quantize", ["--observer", "mse"], "--observer"),
    ("prune", ["--model", NO], "--model"),
    ("prune", ["--out", "FILE"], "--out"),
    ("prune", ["--conv-sensitivity", "-0.1"], "--conv-sensitivity"),
    ("prune", ["--schedule", "3:x"], "--schedule"),
    ("prune", ["--schedule", "3:0.3:1"], "--schedule"),
    ("prune", ["--schedule", "30:0.3"], "--schedule"),
    ("prune", ["--schedule", "3:-1"], "--schedule"),
    ("prune", ["--schedule", "3:0.3,3:0.4"], "--schedule"),
    ("prune", ["--schedule", ","], "--schedule"),
    ("prune", ["--overrides", "{oops"], "--overrides"),
    ("prune", ["--overrides", "[1]"], "--overrides"),
    ("prune", ["--overrides", '{"wav2vec2.encoder.layers.0.attention.q_proj": -1}'], "--overrides"),
    ("prune", ["--overrides", '{"no.such.module": 0.2}'], "--overrides"),  # checked once the model is loaded
    ("maxpool", ["--model", NO], "--model"),
    ("maxpool", ["--out", "FILE"], "--out"),
    ("maxpool", ["--conv-layers", "0"], "--conv-layers"),
    ("maxpool", ["--conv-layers", "9"], "--conv-layers"),
    ("maxpool", ["--conv-layers", "x"], "--conv-layers"),
    ("apply", ["--recipe", "no-such-recipe"], "--recipe"),
    ("apply", ["--recipe", ""], "--recipe"),
    ("apply", ["--recipe", "ort-int8+int8-dynamic"], "--recipe"),
    ("apply", ["--teacher", NO], "--teacher"),
    ("apply", ["--teacher", "int8-dynamic"], "--teacher"),
    ("apply", ["--students-dir", NO], "--students-dir"),
    ("apply", ["--students-dir", "FILE"], "--students-dir"),
    ("apply", ["--out", "FILE"], "--out"),
    ("train-teacher", ["--out", "FILE"], "--out"),
    ("train-teacher", ["--corpus", NO], "--corpus"),
    ("train-teacher", ["--hours-train", "0"], "--hours-train"),
    ("train-teacher", ["--steps", "0"], "--steps"),
    ("train-teacher", ["--time-budget-minutes", "0"], "--time-budget-minutes"),
    ("train-teacher", ["--peak-lr", "-1"], "--peak-lr"),
    ("train-teacher", ["--batch-seconds", "0"], "--batch-seconds"),
    ("train-teacher", ["--eval-every", "0"], "--eval-every"),
    ("train-teacher", ["--checkpoint-minutes", "-1"], "--checkpoint-minutes"),
    ("train-teacher", ["--device", "tpu"], "--device"),
    ("train-teacher", ["--threads", "0"], "--threads"),
    ("train-teacher", ["--save-dtype", "int8"], "--save-dtype"),
    ("train-teacher", ["--dev-eval-utterances", "0"], "--dev-eval-utterances"),
    ("train-teacher", ["--init-from", NO], "--init-from"),
    ("train-teacher", ["--extend-steps", "-1"], "--extend-steps"),
    ("train-teacher", ["--warmup-fraction", "1"], "--warmup-fraction"),
    ("train-teacher", ["--amp", "fp16"], "--amp"),
    ("train-teacher", ["--shortest-first", "maybe"], "--shortest-first"),
    ("train-teacher", ["--arch-overrides", "{oops"], "--arch-overrides"),
    ("train-teacher", ["--arch-overrides", '{"no_such_field": 1}'], "--arch-overrides"),
]
if not torch.cuda.is_available():
    CASES += [(cmd, ["--device", "cuda"], "--device") for cmd in (*TRAINING, "train-teacher")]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("good") / "tiny")


def _argv(cmd: str, extra: list[str], model: Path, tmp: Path) -> list[str]:
    (tmp / "file").write_text("not a folder")
    fill = {"MODEL": str(model), "FILE": str(tmp / "file"), "FILE/sub": str(tmp / "file" / "sub")}
    extra = [fill.get(a, a) for a in extra]
    base = ["compress", cmd, "--out", str(tmp / "out")]
    if cmd in (*TRAINING, "quantize", "prune", "maxpool") and "--model" not in extra:
        base += ["--model", str(model)]
    if cmd == "apply" and "--recipe" not in extra:
        base += ["--recipe", "int8-dynamic"]
    return base + extra


def _number(text: str) -> str:
    try:
        return f"{float(text):g}"
    except ValueError:
        return text


def _one_line(rc: int, err: str, flag: str) -> str:
    lines = err.splitlines()  # every line: no warning, log or traceback may come with the error
    assert rc == 2 and len(lines) == 1, err
    line = lines[0]
    assert line.startswith("footprint") and "error: " in line and "Traceback" not in line, line
    assert flag in line, line
    return line


@pytest.mark.parametrize("cmd,extra,flag", CASES, ids=[f"{c}/{' '.join(e)}" for c, e, _ in CASES])
def test_bad_option_is_one_line(cmd: str, extra: list[str], flag: str, model: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from footprint.cli import main

    argv = _argv(cmd, extra, model, tmp_path)
    capsys.readouterr()
    try:
        rc = main(argv)  # an uncaught exception (a traceback) fails the test here
    except SystemExit as exc:  # argparse's own errors (a choice, a type, a missing option)
        rc = exc.code
    line = _one_line(rc, capsys.readouterr().err, flag)
    if flag not in ("--out",):
        assert not (tmp_path / "out").exists(), line
    if "argument" not in line:  # ours: "--option VALUE: problem"
        value = extra[extra.index(flag) + 1] if flag in extra else None
        if value not in (None, "FILE", "FILE/sub"):
            assert f"{flag} {value}: " in line or f"{flag} {_number(value)}: " in line, line


def test_the_defaults_pass(model: Path, tmp_path: Path) -> None:
    """No false alarm: every command's defaults (and a few good values) pass its checks."""
    from footprint.cli import build_parser
    from footprint.commands import compress_checks as cc

    parser = build_parser()
    runs = {"distill": ["--layers", "1", "--student-arch", "maxpool-conv4", "--init-from", str(model)],
            "prune-structured": ["--conv-layers", "0,5", "--min-heads", "2", "--min-ffn", "64"],
            "quantize": ["--method", "int8-static", "--calibration-data", "embedded:train-clean"],
            "prune": ["--schedule", "0:0,23:1.5", "--overrides", '{"lm_head": 0.1}'], "maxpool": ["--conv-layers", "7"],
            "apply": ["--recipe", "distill-L4+int8-dynamic", "--teacher", str(model)],
            "train-teacher": ["--arch-overrides", '{"num_hidden_layers": 2}', "--warmup-fraction", "0"]}
    for cmd, extra in runs.items():
        model_arg = ["--model", str(model)] if cmd not in ("apply", "train-teacher") else []
        for more in ([], extra):
            args = parser.parse_args(["compress", cmd, "--out", str(tmp_path / "out"), *model_arg, *more]
                                     + (["--recipe", "int8-dynamic"] if cmd == "apply" and not more else []))
            getattr(cc, f"check_{cmd.replace('-', '_')}")(args)
    args = parser.parse_args(["compress", "prune", "--out", str(tmp_path / "out"), "--overrides", '{"lm_head": 0.1}'])
    from helpers import tiny_model

    cc.check_prune_overrides(args, tiny_model())
    assert not (tmp_path / "out").exists()


def test_conv_layers_9_in_a_fresh_process(tmp_path: Path) -> None:
    """The issue's case, as a user runs it: the whole of stderr is one line (no import-time warnings)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "footprint", "compress", "prune-structured", "--conv-layers", "9",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    line = _one_line(done.returncode, done.stderr, "--conv-layers")
    assert line == ("footprint: error: --conv-layers 9: conv layer 9 is out of range: the model has 7 conv layers, "
                    "of which 0 to 5 can be thinned (each must feed another)")
    assert not out.exists()


def test_conv_layers_of_a_recipe_are_checked_once_it_is_built(tmp_path: Path) -> None:
    """A recipe spec has no config.json to read up front: the method checks the built model, one line again."""
    from compress.methods.distill import DistillConfig
    from compress.methods.prune_structured import StructuredPruneConfig
    from compress.methods.prune_structured.run import prune_model
    from core.errors import FootprintError

    with pytest.raises(FootprintError, match=r"^--conv-layers 0,9: conv layer 9 is out of range"):
        prune_model(StructuredPruneConfig(conv_layers=(0, 9)), DistillConfig(out_dir=str(tmp_path / "o"),
                                                                             teacher="bf16"),
                    tmp_path / "o" / "pruned")
    assert not (tmp_path / "o").exists()
