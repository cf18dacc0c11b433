"""Bad user input through the real CLI: exit 2, one stderr line naming the file and the
problem, no traceback, nothing written.  Each case builds its bad file from a good tiny model / corpus."""
from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path
from typing import Callable

import pytest

from helpers import save_tiny_model, shared_tiny_corpus

Case = Callable[[Path, Path, Path], tuple[list[str], Path]]  # (tmp, good model, corpus) -> (argv, named file)


def _model(tmp: Path, good: Path, mutate: Callable[[Path], object]) -> Path:
    d = tmp / "model"
    shutil.copytree(good, d)
    mutate(d)
    return d


def _corpus(tmp: Path, corpus: Path, mutate: Callable[[Path], object]) -> Path:
    d = tmp / "data"
    shutil.copytree(corpus, d)
    mutate(d)
    return d


def _first(d: Path, pattern: str) -> Path:
    return sorted(d.rglob(pattern))[0]


def corrupt_safetensors(tmp: Path, good: Path) -> tuple[Path, Path]:
    d = _model(tmp, good, lambda d: (d / "model.safetensors").write_bytes(b"\xff" * 64))
    return d, d / "model.safetensors"


def truncated_safetensors(tmp: Path, good: Path) -> tuple[Path, Path]:
    def cut(d: Path) -> None:
        f = d / "model.safetensors"
        f.write_bytes(f.read_bytes()[:5000])
    d = _model(tmp, good, cut)
    return d, d / "model.safetensors"


def truncated_variant_tensors(tmp: Path, good: Path) -> tuple[Path, Path]:
    """A saved variant in the suite's own layout (variant.json + variant.safetensors), its tensors cut short."""
    d = tmp / "variant"
    shutil.copytree(Path(__file__).resolve().parent.parent / "compress/embedded/students/maxpool-conv4", d)
    f = d / "variant.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    return d, f


def config(text: str) -> Callable[[Path, Path], tuple[Path, Path]]:
    def make(tmp: Path, good: Path) -> tuple[Path, Path]:
        d = _model(tmp, good, lambda d: (d / "config.json").write_text(text))
        return d, d / "config.json"
    return make


def bad_json(name: str) -> Callable[[Path, Path], tuple[Path, Path]]:
    def make(tmp: Path, good: Path) -> tuple[Path, Path]:
        d = _model(tmp, good, lambda d: (d / name).write_text("{oops"))
        return d, d / name
    return make


def not_a_checkpoint(tmp: Path, good: Path) -> tuple[Path, Path]:
    f = tmp / "model.pt"
    f.write_bytes(b"this is not a checkpoint")
    return f, f


def truncated_flac(tmp: Path, corpus: Path) -> tuple[Path, Path]:
    d = _corpus(tmp, corpus, lambda d: None)
    f = _first(d, "*.flac")
    f.write_bytes(f.read_bytes()[:100])
    return d, f


def text_file(name: str, text: str | bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        f = tmp / name
        f.write_bytes(text if isinstance(text, bytes) else text.encode())
        return f
    return make


def sqlite_without_results(tmp: Path) -> Path:
    f = tmp / "results.sqlite"
    con = sqlite3.connect(f)
    con.execute("CREATE TABLE t (a)")
    con.commit()
    con.close()
    return f


def bad_meta(tmp: Path) -> Path:
    shutil.copy(Path(__file__).parent / "fixtures" / "results_small" / "results.csv", tmp / "results.csv")
    (tmp / "meta.json").write_text("{not json")
    return tmp / "meta.json"


def empty_folder(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


BENCH_RUN = ["--repeats", "1", "--energy", "none", "--overhead-pairs", "0", "--no-progress", "--limit", "2"]


def model_case(make: Callable[[Path, Path], tuple[Path, Path]], cmd: str) -> Case:
    def case(tmp: Path, good: Path, corpus: Path) -> tuple[list[str], Path]:
        src, named = make(tmp, good)
        out = tmp / "out"
        argv = {"info": ["model", "info", str(src)],
                "import": ["model", "import", str(src), "--out", str(out)],
                "eval": ["bench", "eval", "--model", str(src), "--data", str(corpus), "--json", str(out / "e.json")],
                "run": ["bench", "run", "--models", str(src), "--data", str(corpus), "--out", str(out), *BENCH_RUN],
                "quantize": ["compress", "quantize", "--model", str(src), "--method", "int8-dynamic",
                             "--out", str(out)]}[cmd]
        return argv, named
    return case


def data_case(cmd: str) -> Case:
    def case(tmp: Path, good: Path, corpus: Path) -> tuple[list[str], Path]:
        data, named = truncated_flac(tmp, corpus)
        out = tmp / "out"
        if cmd == "eval":
            return ["bench", "eval", "--model", str(good), "--data", str(data), "--json", str(out / "e.json")], named
        return ["bench", "run", "--models", str(good), "--data", str(data), "--out", str(out), *BENCH_RUN], named
    return case


def replay_case(tmp: Path, good: Path, corpus: Path) -> tuple[list[str], Path]:
    trace = text_file("trace.json", "not json")(tmp)
    argv = ["bench", "run", "--models", str(good), "--data", str(corpus), "--out", str(tmp / "out"), *BENCH_RUN]
    argv[argv.index("none")] = f"replay:{trace}"
    return argv, trace


def report_case(make: Callable[[Path], Path], arg: str = "file") -> Case:
    def case(tmp: Path, good: Path, corpus: Path) -> tuple[list[str], Path]:
        named = make(tmp)
        target = named if arg == "file" else named.parent if arg == "parent" else named
        return ["report", str(target), "--out", str(tmp / "out" / "report.html")], named
    return case


CASES: dict[str, Case] = {
    "model-info/corrupt-safetensors": model_case(corrupt_safetensors, "info"),
    "model-info/truncated-safetensors": model_case(truncated_safetensors, "info"),
    "model-info/config-not-json": model_case(config("{not json"), "info"),
    "model-info/config-a-list": model_case(config("[1, 2]"), "info"),
    "model-info/config-bad-field": model_case(config('{"model_type": "wav2vec2", "hidden_size": "x"}'), "info"),
    "model-info/preprocessor-not-json": model_case(bad_json("preprocessor_config.json"), "info"),
    "model-info/truncated-variant-tensors": model_case(truncated_variant_tensors, "info"),
    "model-import/corrupt-safetensors": model_case(corrupt_safetensors, "import"),
    "model-import/not-a-checkpoint": model_case(not_a_checkpoint, "import"),
    "bench-eval/corrupt-safetensors": model_case(corrupt_safetensors, "eval"),
    "bench-eval/variant-json-not-json": model_case(bad_json("variant.json"), "eval"),
    "bench-eval/checkpoint-file-as-model": model_case(not_a_checkpoint, "eval"),
    "bench-eval/truncated-flac": data_case("eval"),
    "bench-run/corrupt-safetensors": model_case(corrupt_safetensors, "run"),
    "bench-run/variant-json-not-json": model_case(bad_json("variant.json"), "run"),
    "bench-run/truncated-flac": data_case("run"),
    "bench-run/truncated-variant-tensors": model_case(truncated_variant_tensors, "run"),
    "bench-run/replay-trace-not-json": replay_case,
    "compress-quantize/corrupt-safetensors": model_case(corrupt_safetensors, "quantize"),
    "compress-quantize/config-a-list": model_case(config("[1, 2]"), "quantize"),
    "report/csv-not-results": report_case(text_file("some.csv", "a,b\n1,2\n")),
    "report/sqlite-file-not-sqlite": report_case(text_file("some.sqlite", "garbage")),
    "report/sqlite-without-results": report_case(sqlite_without_results, "parent"),
    "report/empty-folder": report_case(empty_folder),
    "report/meta-not-json": report_case(bad_meta, "parent"),
}


PROGRESS_BAR = re.compile(r"^[\w ]+: +\d+%\|")  # tqdm's "Loading weights:  40%|####  | 29/72 [...]"


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("good") / "tiny")


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line(name: str, tmp_path: Path, good: Path, tmp_path_factory, capsys) -> None:  # noqa: ANN001
    from footprint.cli import main

    corpus = shared_tiny_corpus(tmp_path_factory)
    argv, named = CASES[name](tmp_path, good, corpus)
    capsys.readouterr()
    rc = main(argv)  # an uncaught exception (a traceback) fails the test here
    err = capsys.readouterr().err
    # every line on stderr counts (a log warning, a second error, a traceback), except a progress bar's
    lines = [ln for ln in err.splitlines() if ln.strip() and not PROGRESS_BAR.match(ln)]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("footprint: error:"), err
    assert str(named) in lines[0], lines[0]
    assert not (tmp_path / "out").exists(), sorted(p.name for p in (tmp_path / "out").rglob("*"))
