"""``footprint bench``: run the benchmark (variants x devices -> one tidy table) and show a run's table.

Standard library only at module level (the CLI imports every group's registrar before any command runs).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def _csv(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _int_csv(text: str) -> list[int]:
    try:
        return [int(s) for s in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The ``bench run`` options (also usable by other entry points, e.g. the main job)."""
    p.add_argument("--models", type=_csv, default=None,
                   help="comma-separated variants: recipes (baseline, distill-L4, int8-dynamic, ...), 'embedded', "
                        "model directories, or arch-<large|base>-L<n>[+int8-dynamic] (default: embedded)")
    p.add_argument("--data", default="embedded:dev-clean",
                   help="LibriSpeech subset directory or embedded:<subset> (default: embedded:dev-clean)")
    p.add_argument("--device", dest="devices", type=_csv, default=["cpu"], help="cpu, cuda or cpu,cuda")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per variant x device (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up batches before the first repeat (default 1)")
    p.add_argument("--out", default="runs/bench", help="RUN_DIR for results.sqlite, results.csv, meta.json")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--batch-size", type=int, default=8,
                   help="utterances per batch (group-norm models run at batch 1 regardless)")
    p.add_argument("--limit", type=int, default=None, help="only the first N utterances (id order)")
    ci = p.add_mutually_exclusive_group()
    ci.add_argument("--carbon-intensity", type=float, default=None, metavar="G_PER_KWH",
                    help="grid carbon intensity in g CO2e/kWh")
    ci.add_argument("--country", default=None, metavar="ISO",
                    help="country code (ISO 3166 alpha-3 or -2) for codecarbon's offline grid table")
    p.add_argument("--energy", default="auto",
                   help="meter fallback chain, e.g. codecarbon,carbontracker,nvml,rapl,replay:TRACE.json,none "
                        "(default auto: cpu rapl>codecarbon>carbontracker, cuda nvml+host>nvml>codecarbon; "
                        "nvml+host = GPU board by NVML + host CPU/RAM by RAPL, else CodeCarbon's estimate)")
    p.add_argument("--idle-baseline-s", type=float, default=None, metavar="S",
                   help="measure idle power for S seconds first; energy_j_net = energy_j minus it (default: 10 s "
                        "when the meter reads a hardware counter, none for estimates; 0: off)")
    p.add_argument("--arch", type=_csv, default=[], help="random-weight architectures to time: large, base")
    p.add_argument("--layers", type=_int_csv, default=[], help="transformer depths for --arch, e.g. 24,12,10,8,6")
    p.add_argument("--arch-fraction", type=float, default=None,
                   help="share of the dev-clean-shaped workload timed for --arch (default 0.01 on CPU, 1 on CUDA); "
                        "model_s_full_est extrapolates to the whole")
    p.add_argument("--paper-loop", action="store_true",
                   help="also time the paper's batch-1 loop incl. file decoding (rows <variant>@paper-loop)")
    p.add_argument("--overhead-pairs", type=int, default=5,
                   help="with/without-tracker pairs over a tenth of the batches for the energy tracker's overhead "
                        "(0: skip; fewer than 5: not measured, no median with an interval)")
    p.add_argument("--variant-memory", choices=["auto", "child", "inprocess", "off"], default="auto",
                   help="how variant_peak_mb is measured: a child process per variant x device with only it loaded "
                        "(auto: when the loader pickles; kept across runs in the memory cache), a high-water delta in "
                        "this process, or not at all (random-weight architecture rows: never, no table shows it)")
    p.add_argument("--scenarios", type=_csv, default=["batched", "unseen"],
                   help="timing scenarios for trained models: batched (warm: lengths already run, a batch job) and/or "
                        "unseen (each repeat over held-out lengths this process never ran, a server) "
                        "(default batched,unseen)")
    p.add_argument("--unseen-share", type=float, default=0.5,
                   help="share of the utterances held out for unseen, split over the repeats (default 0.5)")
    add_timed_share_argument(p, 1.0)
    p.add_argument("--max-batch-seconds", type=float, default=240.0, help="padded audio per batch (default 240)")
    add_calibration_argument(p)
    add_fresh_argument(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_fresh_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fresh", action="store_true",
                   help="compute every WER again instead of reusing the accuracy cache (a variant's WER on the same "
                        "data, code and software from an earlier run; $W2V_FOOTPRINT_ACCURACY_CACHE, default "
                        "~/.cache/w2v-footprint/accuracy)")


def add_timed_share_argument(p: argparse.ArgumentParser, default: float) -> None:
    p.add_argument("--timed-share", type=float, default=default, metavar="SHARE",
                   help="share of the accuracy pass's batches each warm repeat times (every round(1/SHARE)-th, across "
                        f"the lengths, so the shapes are warm); WER always over every utterance (default {default:g})")


def add_calibration_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calibration-data", default=None, metavar="DIR",
                   help="audio the calibrating recipes (int8-static, int8-inductor-static) calibrate on: a "
                        "LibriSpeech-layout subset, never the evaluated set (default: the training split that "
                        "belongs to --data: embedded:train-clean, or a train-* subset beside a LibriSpeech --data)")


def variant_loader(args: argparse.Namespace, data: str):  # noqa: ANN201
    """``load_variant`` with the calibration defaults of this run (a module-level partial: it pickles, so the
    runner's memory child builds the same variant)."""
    import functools

    from compress.variants import LOADER_MODULES, import_loader_dependencies, load_variant

    import_loader_dependencies()  # before the runner's clock: its first build must not pay for the imports
    loader = functools.partial(load_variant, calibration_data=getattr(args, "calibration_data", None), eval_data=data)
    loader.preload = LOADER_MODULES  # the memory children's fork server imports them once, not every child
    return loader


def config_from_args(args: argparse.Namespace):  # noqa: ANN201
    from bench.runner import RunConfig

    models = args.models if args.models is not None else ([] if args.arch else ["embedded"])
    return RunConfig(out=args.out, models=models,
                     data=args.data, devices=args.devices, repeats=args.repeats, warmup=args.warmup,
                     threads=args.threads, batch_size=args.batch_size, max_batch_seconds=args.max_batch_seconds,
                     limit=args.limit, energy=args.energy, carbon_intensity=args.carbon_intensity, country=args.country,
                     idle_baseline_s=args.idle_baseline_s, arch=args.arch, layers=args.layers,
                     arch_fraction=args.arch_fraction, paper_loop=args.paper_loop, overhead_pairs=args.overhead_pairs,
                     variant_memory=getattr(args, "variant_memory", "auto"),
                     scenarios=getattr(args, "scenarios", ["batched", "unseen"]),
                     unseen_share=getattr(args, "unseen_share", 0.5), timed_share=getattr(args, "timed_share", 1.0),
                     fresh=getattr(args, "fresh", False), side_builds=compiled_specs(models))


def compiled_specs(models: list[str]) -> list[str]:
    """The specs whose build runs a compiler: the runner builds them alongside its own builds."""
    from compress.variants import compiles_when_built

    return [m for m in models if compiles_when_built(m)]


def check_inputs(cfg) -> None:  # noqa: ANN001
    """Read the user's files before anything is written: model directories given as --models, the data
    folder's listing, a replay trace.  A problem is one FootprintError line naming the file."""
    from compress.variants import check_model_spec
    from core.data import resolve_data
    from core.data.librispeech import read_subset

    for spec in cfg.models:
        check_model_spec(spec)
    if not str(cfg.data).startswith("embedded:"):  # the embedded corpus is generated, never the user's file
        read_subset(resolve_data(cfg.data))
    energy = cfg.energy if isinstance(cfg.energy, str) else ",".join(cfg.energy or [])
    for item in (s.strip() for s in energy.split(",")):
        if item.startswith("replay:"):
            check_replay_trace(item.split(":", 1)[1])


def check_replay_trace(path_text: str) -> None:
    """``--energy replay:TRACE``: the user named this file, so a missing or malformed one is an error (not a
    silent fall-back to another meter)."""
    import json

    from core.errors import FootprintError

    path = Path(path_text).expanduser()
    try:
        trace = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FootprintError(f"{path}: replay trace not found") from None
    except (OSError, ValueError) as exc:
        raise FootprintError(f"{path}: replay trace is not JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(trace, dict) or not isinstance(trace.get("samples"), list) or len(trace["samples"]) < 2:
        raise FootprintError(f"{path}: not a replay trace (expected a JSON object with at least two 'samples')")


def _remove_if_empty_run(out: Path) -> None:
    """After a failed run into a folder this command created: remove it unless it holds a finished row (a rerun
    resumes from those), so bad input leaves nothing behind."""
    import shutil
    import sqlite3

    db = out / "results.sqlite"
    if db.exists():
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                if con.execute("SELECT COUNT(*) FROM results").fetchone()[0]:
                    return
            finally:
                con.close()
        except sqlite3.Error:
            pass
    shutil.rmtree(out, ignore_errors=True)


def cmd_run(args: argparse.Namespace) -> int:
    import os

    from bench.runner import run_benchmark
    from core import console
    from core.errors import FootprintError
    from core.results import load_results

    cfg = config_from_args(args)
    check_inputs(cfg)
    out = Path(cfg.out)
    created = not out.exists()
    try:
        with console.run_log(out / "run.log"):  # every record, other libraries' warnings included
            summary = run_benchmark(cfg, variant_loader(args, cfg.data), progress=not args.no_progress)
    except FootprintError:
        if created and int(os.environ.get("WORLD_SIZE", "1")) == 1:
            _remove_if_empty_run(out)
        raise
    if summary.meta and summary.run_dir.exists() and summary.meta.get("run_id"):
        if int(os.environ.get("RANK", "0")) == 0:
            df = load_results(summary.run_dir)
            df = df[df["run_id"] == summary.run_id]
            print(_format(summarize(df)))
            print(f"{summary.rows_written} row(s) written, {summary.rows_skipped} resumed; "
                  f"{summary.run_dir / 'results.csv'}")
    return 0


# What ``bench run`` and ``bench show`` print: reports' summary (one per variant x device), compactly.
SHOW_COLUMNS = {"variant": "variant", "device": "device", "n": "repeats", "weights": "weights", "scenario": "scenario",
                "batch_size": "batch_size", "n_utts": "n_utts", "audio_s": "audio_s", "model_s": "model_s",
                "time_s": "e2e_s", "rtfx": "rtfx", "wer": "wer", "cer": "cer", "params": "params", "size_mb": "size_mb",
                "energy_kwh": "energy_kwh", "energy_method": "energy_method"}


def shown_scenario(s: str) -> str:
    """A scenario as ``bench show`` prints it: with warm or unseen, so no time reads without saying which."""
    from reports.deploy import word

    return s if s == "unseen" else f"{s} ({word(s)})"


def summarize(df):  # noqa: ANN001, ANN201
    """Medians over repeats per variant x device, every scenario, the columns a reader looks at first."""
    from reports.stats import summary

    if df.empty:
        return df
    import pandas as pd

    # per scenario: warm (batched) and unseen rows of one variant share its name and must not share a median
    scen = df["scenario"].fillna("batched") if "scenario" in df else pd.Series("batched", index=df.index)
    parts = [summary(g, "e2e_s", all_scenarios=True).assign(scenario=shown_scenario(s))
             for s, g in df.groupby(scen, sort=True)]
    out = pd.concat(parts, ignore_index=True).sort_values(["variant", "device", "scenario"], kind="stable")
    return out[list(SHOW_COLUMNS)].rename(columns=SHOW_COLUMNS)


def _format(df) -> str:  # noqa: ANN001
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format",
                           lambda x: f"{x:.4g}"):
        return df.to_string(index=False)


def cmd_show(args: argparse.Namespace) -> int:
    from core.results import load_results

    df = load_results(args.run_dir)
    print(_format(summarize(df) if not args.all else df))
    return 0


def cmd_ratios(args: argparse.Namespace) -> int:
    from bench.ratios import format_report, write

    res, path = write(args.run_dir)
    print(format_report(res))
    print(f"written to {path}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from bench.evaluate import evaluate_model, write_json
    from compress.variants import load_variant

    results = evaluate_model(args.model, args.data, load_variant, limit=args.limit, batch_size=args.batch_size,
                             threads=args.threads)
    for r in results:
        print(r.line())
    if args.json:
        write_json(results, args.json)
    return 0


def cmd_check_device(args: argparse.Namespace) -> int:
    """One line per device: visible or not (exit 2 with the reason), its name, and which energy meter would run."""
    from bench import energy
    from core.device import check_devices

    for dev in check_devices(args.devices):
        meter = energy.open_meter(energy.parse_chain(args.energy, str(dev)), str(dev))
        try:
            print(f"{dev}: {dev.name()}; energy: {meter.name} ({'measured' if meter.measured else 'estimated'}): "
                  f"{meter.describe()}")
        finally:
            meter.close()
    return 0


def register_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark variants x devices into a tidy results table")
    bsub = p.add_subparsers(dest="bench_cmd", metavar="COMMAND")
    bsub.required = True
    r = bsub.add_parser("run", help="accuracy pass + warm-up + interleaved timed repeats, with energy; resumable",
                        epilog="Several GPUs: torchrun --standalone --nproc-per-node N -m bench bench run ... "
                               "(utterances sharded over ranks, one table on rank 0).")
    add_run_arguments(r)
    r.set_defaults(func=cmd_run)
    s = bsub.add_parser("show", help="median table of a RUN_DIR")
    s.add_argument("run_dir")
    s.add_argument("--all", action="store_true", help="every row and column")
    s.set_defaults(func=cmd_show)
    e = bsub.add_parser("eval", help="accuracy only: WER/CER of one model on one or more datasets (no timing repeats)")
    e.add_argument("--model", default="embedded", help="embedded, a model directory or a recipe (default: embedded)")
    e.add_argument("--data", type=_csv, default=["embedded:dev-clean", "embedded:dev-other"],
                   help="comma-separated subsets (default: embedded:dev-clean,embedded:dev-other)")
    e.add_argument("--limit", type=int, default=None, help="only the first N utterances (id order)")
    e.add_argument("--batch-size", type=int, default=8)
    e.add_argument("--threads", type=int, default=None)
    e.add_argument("--json", default=None, metavar="FILE", help="also write the results with provenance as JSON")
    e.set_defaults(func=cmd_eval)
    c = bsub.add_parser("check-device", help="is the device visible, and which energy meter would run on it")
    c.add_argument("--device", dest="devices", type=_csv, default=["cpu"])
    c.add_argument("--energy", default="auto")
    c.set_defaults(func=cmd_check_device)
    q = bsub.add_parser("ratios", help="paired per-repeat ratios: batched vs paper-loop, int8 and bf16-autocast vs "
                                       "fp32, every variant vs the teacher (warm and unseen lengths), one-time costs "
                                       "and break-even audio, tracker overhead")
    q.add_argument("run_dir")
    q.set_defaults(func=cmd_ratios)
