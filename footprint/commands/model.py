"""``footprint model``: import a model (Hugging Face dir, hub id, fairseq .pt), report its size and FLOPs, and
write its model card.

Standard library only at module level: the parser is built without importing torch or transformers.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

ARCH_CHOICES = ("large", "base", "embedded")


def register_model(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="model I/O: import checkpoints, report size and FLOPs")
    msub = p.add_subparsers(dest="model_cmd", metavar="CMD")
    msub.required = True

    imp = msub.add_parser("import", help="import a Hugging Face dir, hub id or fairseq .pt as a model directory")
    imp.add_argument("src", help="local Hugging Face model dir, hub id (needs a network), or fairseq checkpoint .pt")
    imp.add_argument("--out", required=True, help="output model directory (save_pretrained layout)")
    imp.add_argument("--dict", dest="dict_path", default=None,
                     help="fairseq dict.ltr.txt, only if the checkpoint's letter order is not the standard one")
    imp.set_defaults(func=_import)

    info = msub.add_parser("info", help="parameters, fp32 MB, layers and FLOPs per second of audio")
    info.add_argument("model_dir", nargs="?", default=None, help="a saved model directory")
    info.add_argument("--arch", choices=ARCH_CHOICES, default=None, help="a bare architecture (no weights)")
    info.add_argument("--layers", default=None,
                      help="transformer layers, one number or a comma list (e.g. 24,12,10,8,6,4)")
    info.add_argument("--utterance-s", type=float, default=7.2,
                      help="utterance length for attention-score FLOPs (default 7.2 s, dev-clean mean)")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(func=_info)

    mk = msub.add_parser("making", help="what making a model cost: its record's phases and totals")
    mk.add_argument("model_dirs", nargs="+", metavar="DIR", help="model directories")
    mk.add_argument("--backfill", action="store_true",
                    help="first recompute the record from the folder's training logs (wall time x a stated power: "
                         "'estimated from logged time'); metered phases are kept")
    mk.add_argument("--country", default=None, help="ISO 3166 country code for the carbon intensity (backfill)")
    mk.add_argument("--carbon-intensity", type=float, default=None, help="g CO2e/kWh (backfill)")
    mk.add_argument("--json", action="store_true", help="print the records as JSON")
    mk.set_defaults(func=_making)

    card = msub.add_parser("card", help="write each model folder's README.md: a Hugging Face model card (CO2 "
                                        "from the making record, WER from the stored evaluation)")
    card.add_argument("model_dirs", nargs="+", metavar="DIR", help="model folders (a saved variant, the teacher)")
    card.add_argument("--results", metavar="RUN_DIR", default=None,
                      help="take each folder's dev-clean WER / CER from this results run and store it in the record")
    card.set_defaults(func=_card)


def _import(args: argparse.Namespace) -> int:
    from compress.model_io.hf import import_model

    out = import_model(args.src, args.out, dict_path=args.dict_path)
    print(f"imported {args.src} -> {out}")
    return 0


def _making(args: argparse.Namespace) -> int:
    from core.making import NOT_RECORDED, read_making

    intensity = None
    if args.backfill:
        from bench.energy.carbon import resolve_intensity

        intensity = resolve_intensity(args.carbon_intensity, args.country)
    out = {}
    for d in args.model_dirs:
        if args.backfill:
            from footprint.making_backfill import backfill

            backfill(d, intensity)
        mk = read_making(d)
        out[d] = mk.as_dict() if mk else None
        if not args.json:
            if mk is None:
                print(f"{d}: {NOT_RECORDED}")
                continue
            print(f"{d}: {mk.wall_s / 3600:.3f} h, {mk.energy_kwh:.4g} kWh, {mk.co2_kg:.4g} kg CO2e, {mk.label}")
            for ph in mk.phases:
                kwh = "n/a" if ph.energy_kwh is None else f"{ph.energy_kwh:.4g} kWh"
                print(f"  {ph.phase}: {ph.wall_s:.1f} s on {ph.device}, {kwh}")
    if args.json:
        print(json.dumps(out, indent=1))
    return 0


def _card(args: argparse.Namespace) -> int:
    from compress.card import evaluation_from_results, write_card, write_evaluation

    for d in args.model_dirs:
        if args.results is not None:
            write_evaluation(d, evaluation_from_results(d, args.results))
        print(write_card(d))
    return 0


def _parse_layers(text: str | None) -> list[int | None]:
    from core.errors import FootprintError

    if text is None:
        return [None]
    try:
        layers = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise FootprintError(f"--layers {text!r}: expected integers such as 24 or 24,12,6") from None
    if not layers or any(n < 1 for n in layers):
        raise FootprintError(f"--layers {text!r}: expected positive layer counts")
    return layers


def _info(args: argparse.Namespace) -> int:
    from core.errors import FootprintError
    from core.model_info import PAPER_TABLE2, model_info

    if (args.model_dir is None) == (args.arch is None):
        raise FootprintError("model info: give either a model directory or --arch (with optional --layers)")
    rows: list[dict[str, Any]] = []
    if args.model_dir is not None:
        if args.layers is not None:
            raise FootprintError("model info: --layers only applies to --arch")
        from pathlib import Path

        from compress.methods.base import weights_bytes_on_disk
        from compress.methods.storage import load_variant_dir, read_variant_json
        from compress.model_io.hf import load_model_dir

        d = Path(args.model_dir)
        if d.is_dir() and read_variant_json(d).get("storage") == "tensors":  # a saved variant (int8, max-pool...)
            model, _, _ = load_variant_dir(d)
        else:
            model, _ = load_model_dir(d)
        disk = (weights_bytes_on_disk(d) or 0) / 1e6
        mi = model_info(model, utterance_s=args.utterance_s, source=str(d))
        rows.append({"name": str(d), **mi.to_dict(), "size_on_disk_mb": disk})
    else:
        from core.arch import wav2vec2_config

        for n in _parse_layers(args.layers):
            mi = model_info(wav2vec2_config(args.arch, layers=n), utterance_s=args.utterance_s,
                            source=f"arch:{args.arch}")
            row = {"name": f"{args.arch}", **mi.to_dict()}
            if args.arch == "large" and mi.transformer_layers in PAPER_TABLE2:
                row["paper_params_m"], row["paper_size_mb"] = PAPER_TABLE2[mi.transformer_layers]
            rows.append(row)

    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(format_table(rows))
    return 0


def format_table(rows: list[dict[str, Any]]) -> str:
    """A readable table of model_info rows, with the paper's Table 2 beside matching depths."""
    paper = any("paper_params_m" in r for r in rows)
    head = ["model", "layers", "params", "fp32 MB", "conv", "conv GFLOP/s", "transf GFLOP/s", "transf %"]
    if paper:
        head += ["+pretrain params", "+pretrain MB", "paper params", "paper MB"]
    table: list[list[str]] = [head]
    for r in rows:
        line = [r["name"], str(r["transformer_layers"]), f"{r['params']:,}", f"{r['size_mb']:.0f}",
                str(r["conv_layers"]), f"{r['conv_flops_per_s'] / 1e9:.2f}",
                f"{r['transformer_flops_per_s'] / 1e9:.2f}", f"{100 * r['transformer_fraction']:.1f}"]
        if paper:
            pre = r.get("pretraining_module_params")
            line += ([f"{(r['params'] + pre) / 1e6:.1f} M", f"{(r['params'] + pre) * 4 / 1e6:.0f}"] if pre
                     else ["", ""])
            line += ([f"{r['paper_params_m']:g} M", f"{r['paper_size_mb']:g}"] if "paper_params_m" in r
                     else ["", ""])
        table.append(line)
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    utt = rows[0]["utterance_s"] if rows else 7.2
    notes = [f"MB = params x 4 bytes / 1e6 (fp32).  FLOPs = 2 x MACs per second of audio, for a {utt:g} s utterance "
             f"(attention scores included; norms/activations not counted).",
             "conv = feature-extractor convolutions; "
             "transf = feature projection + positional conv + layers + CTC head."]
    if rows and "size_on_disk_mb" in rows[0] and rows[0].get("size_on_disk_mb") is not None:
        notes.append(f"weights on disk: {rows[0]['size_on_disk_mb']:.1f} MB")
    if paper:
        notes.append("paper = Table 2 (GPU students; 4 layers from Table 1).  '+pretrain' adds wav2vec 2.0's "
                     "pre-training modules (quantizer, project_q, final_proj: "
                     f"{rows[0].get('pretraining_module_params') or 0:,} params) that the paper's student code "
                     "kept: that is why its students are ~2 M params (~8 MB) larger than the same depth here.  "
                     "Its 24-layer row is the Hugging Face model itself: compare it with 'fp32 MB'.")
    return "\n".join(lines + [""] + notes)
