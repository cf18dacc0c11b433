"""Make tiny fairseq wav2vec 2.0 CTC checkpoints and fairseq's own logits for tests/test_fairseq_import.py.

Needs real fairseq, which the suite never installs.  Run once, by hand, in a throwaway venv outside the repo
(fairseq 0.12.2 does not import on Python 3.11; the fork fairseq-fixed does, ~7 minutes to build):

    python -m venv /tmp/fsenv
    /tmp/fsenv/bin/pip install torch==2.13.0          # the CPU build, first, so fairseq does not pull CUDA
    /tmp/fsenv/bin/pip install fairseq-fixed
    /tmp/fsenv/bin/python tools/make_fairseq_fixtures.py

It writes tests/fixtures/fairseq/: one ``<name>.pt`` per fixture (saved the way fairseq saves: ``args`` or
``cfg``, ``model``, ``optimizer_history``, ``extra_state``), ``<name>.logits.npy`` (fairseq's eval-mode logits,
frames x symbols in fairseq's dictionary order), ``waveform.npy`` (the 1.5 s input), ``dict.alpha.ltr.txt`` (a
non-standard dictionary order) and ``fixtures.json`` (what each fixture is).  Not run in CI.

How: fairseq's own argument parser makes the legacy ``args`` Namespaces (as 2020 checkpoints like
wav2vec_big_960h.pt were made); fairseq builds the model; EVERY parameter is then overwritten with seeded random
values (norm gains and biases, conv biases, weight-norm g and v, group-norm affine, mask_emb), so a mapping that
drops or swaps any of them changes the logits.  The checkpoint is then reloaded with fairseq's
``checkpoint_utils.load_model_ensemble_and_task`` and the logits are taken from that reloaded model: the files
are exactly what fairseq itself reads.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "fairseq"
SAMPLE_RATE = 16_000
SECONDS = 1.5
SEED = 1234

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
STANDARD_LETTERS = list("|ETAONIHSRDLUMWCFGYPBVK'XJQZ")  # dict.ltr.txt order of the LibriSpeech models
ALPHA_LETTERS = sorted(STANDARD_LETTERS)                    # another order, to exercise the row permutation

# Tiny model: the standard 7 kernels/strides at small widths, 2 layers of width 32.
CONV = "[(16, 10, 5)] + [(24, 3, 2)] * 4 + [(24, 2, 2)] * 2"
TINY = ["--conv-feature-layers", CONV, "--encoder-layers", "2", "--encoder-embed-dim", "32",
        "--encoder-ffn-embed-dim", "64", "--encoder-attention-heads", "4", "--conv-pos", "16",
        "--conv-pos-groups", "4", "--final-dim", "16", "--latent-vars", "8", "--latent-groups", "2"]

FIXTURES = [
    # wav2vec_big_960h style: group-norm extractor, post-LN, no conv bias, no normalisation; legacy Namespace
    # 'args', and the old plain-pickle serialisation (torch < 1.6).
    dict(name="legacy_args_groupnorm", fmt="args", extractor_mode="default", layer_norm_first=False,
         conv_bias=False, normalize=False, zip=False, letters=STANDARD_LETTERS),
    # lv60 style: layer-norm extractor, pre-LN, conv bias, normalised waveform; newer 'cfg' dicts, zip format.
    dict(name="cfg_layernorm", fmt="cfg", extractor_mode="layer_norm", layer_norm_first=True,
         conv_bias=True, normalize=True, zip=True, letters=STANDARD_LETTERS),
    # lv60 style again in legacy Namespace form, with a non-standard dictionary order (rows must be permuted).
    dict(name="legacy_args_layernorm_alphadict", fmt="args", extractor_mode="layer_norm", layer_norm_first=True,
         conv_bias=True, normalize=True, zip=True, letters=ALPHA_LETTERS),
    # big_960h style architecture in the newer 'cfg' form.
    dict(name="cfg_groupnorm", fmt="cfg", extractor_mode="default", layer_norm_first=False,
         conv_bias=False, normalize=False, zip=True, letters=STANDARD_LETTERS),
]

log = logging.getLogger("make_fairseq_fixtures")


def waveform() -> np.ndarray:
    """1.5 s of deterministic speech-like signal: a gliding harmonic tone with bursts of seeded noise."""
    t = np.arange(int(SECONDS * SAMPLE_RATE), dtype=np.float64) / SAMPLE_RATE
    f0 = 120 + 60 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    noise = np.random.default_rng(SEED).standard_normal(t.size) * (np.sin(2 * np.pi * 2.1 * t) > 0.6)
    return (0.2 * voiced + 0.05 * noise).astype(np.float32)


def write_dict(data_dir: Path, letters: list[str]) -> Path:
    path = data_dir / "dict.ltr.txt"
    # fairseq dictionary file: "symbol count", most frequent first; counts only matter for building dicts.
    path.write_text("".join(f"{s} {1000 - i}\n" for i, s in enumerate(letters)), encoding="utf-8")
    return path


def legacy_args(data_dir: Path, spec: dict) -> argparse.Namespace:
    """Fine-tuning Namespace with the pre-training Namespace in ``w2v_args``, from fairseq's own parser."""
    from fairseq import options

    norm = ["--normalize"] if spec["normalize"] else []
    pre = [str(data_dir), "--task", "audio_pretraining", "--arch", "wav2vec2",
           "--extractor-mode", spec["extractor_mode"], *TINY, *norm]
    if spec["layer_norm_first"]:
        pre.append("--layer-norm-first")
    if spec["conv_bias"]:
        pre.append("--conv-bias")
    w2v_args = options.parse_args_and_arch(options.get_training_parser(), input_args=pre)
    ft = [str(data_dir), "--task", "audio_finetuning", "--arch", "wav2vec_ctc", "--labels", "ltr",
          "--w2v-path", "/nonexistent/pretrained.pt", "--final-dropout", "0.1", "--mask-prob", "0.5",
          "--mask-channel-prob", "0.25", "--mask-channel-length", "16", "--layerdrop", "0.05", *norm]
    args = options.parse_args_and_arch(options.get_training_parser(), input_args=ft)
    args.w2v_args = w2v_args
    return args


@torch.no_grad()
def randomise(model: torch.nn.Module, seed: int) -> None:
    """Overwrite every parameter with seeded random values of a sensible scale (nothing left at its init)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        r = torch.randn(p.shape, generator=g)
        if name.startswith("w2v_encoder.proj."):
            # A strong, input-driven CTC head, so the per-frame argmax (the decoded text) varies.
            p.copy_(r * 3.0 / math.sqrt(p[0].numel()) if p.dim() == 2 else r * 0.05)
        elif name.endswith("weight_g"):
            p.copy_(r.abs() * 0.5 + 0.75)
        elif name.endswith("bias"):
            p.copy_(r * 0.05)  # small: large random biases swamp the per-frame signal
        elif p.dim() == 1:  # layer/group-norm gains and mask_emb
            p.copy_(1.0 + 0.3 * r if not name.endswith("mask_emb") else r)
        else:
            fan_in = p[0].numel()
            p.copy_(r / math.sqrt(fan_in))


def convert_legacy_args(args: argparse.Namespace):
    """fairseq's ``convert_namespace_to_omegaconf`` for a fine-tuning Namespace holding a ``w2v_args`` Namespace.

    fairseq 0.12.2 (hydra-core 1.0) composes the nested Namespace into ``model.w2v_args.*`` with non-strict
    overrides; under the hydra 1.3 that fairseq-fixed runs with, that composition is refused ("Could not
    override 'model.w2v_args.common...'").  Converting the two Namespaces separately and nesting the result
    gives the config fairseq 0.12.2 builds.
    """
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from omegaconf import open_dict

    w2v_args = getattr(args, "w2v_args", None)
    if not isinstance(w2v_args, argparse.Namespace):
        return convert_namespace_to_omegaconf(args)
    flat = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "w2v_args"})
    cfg = convert_namespace_to_omegaconf(flat)
    with open_dict(cfg):
        cfg.model.w2v_args = convert_namespace_to_omegaconf(w2v_args)
    return cfg


def numpy_safe_globals() -> list:
    """What tests' safe loader admits too: Namespace and numpy scalars (fairseq's reload uses torch.load)."""
    from numpy._core import multiarray

    out: list = [argparse.Namespace, np.ndarray, np.dtype, np.dtypes.Float64DType, np.dtypes.Int64DType]
    for name in ("_reconstruct", "scalar"):
        out += [(getattr(multiarray, name), f"numpy._core.multiarray.{name}"),
                (getattr(multiarray, name), f"numpy.core.multiarray.{name}")]
    return out


def make(spec: dict, wav: np.ndarray, seed: int) -> dict:
    from fairseq import checkpoint_utils, tasks
    from omegaconf import OmegaConf

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        write_dict(data_dir, spec["letters"])
        args = legacy_args(data_dir, spec)
        cfg = convert_legacy_args(args)
        task = tasks.setup_task(cfg.task)
        model = task.build_model(cfg.model)
        randomise(model, seed)
        model.eval()
        state = model.state_dict()
        best = np.float64(12.345)  # fairseq keeps losses as numpy scalars in extra_state
        history = [{"criterion_name": "CtcCriterion", "optimizer_name": "FairseqAdam",
                    "lr_scheduler_state": {"best": best}, "num_updates": 1000}]
        if spec["fmt"] == "args":
            ckpt = {"args": args, "model": state, "optimizer_history": history,
                    "extra_state": {"train_iterator": {"epoch": 3, "iterations_in_epoch": 0, "shuffle": True},
                                    "val_loss": best}}
        else:
            # As fairseq's Trainer.state_dict(): cfg as plain containers; building the model filled
            # cfg.model.w2v_args with the pre-training config.
            ckpt = {"args": None, "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
                    "model": state, "criterion": {}, "optimizer_history": history, "task_state": {},
                    "extra_state": {"metrics": {}, "previous_training_time": 12.5,
                                    "train_iterator": {"epoch": 3, "iterations_in_epoch": 0, "shuffle": True}}}
        out_pt = OUT / f"{spec['name']}.pt"
        torch.save(ckpt, out_pt, _use_new_zipfile_serialization=spec["zip"])

        source = torch.from_numpy(wav)[None]
        direct = model.get_logits(model(source=source, padding_mask=None))[:, 0].detach()

        # Reload the file the way fairseq does and take the reference logits from that model.  fairseq calls
        # torch.load with torch's default weights_only=True, hence the allow-list; the legacy-args upgrade
        # goes through convert_legacy_args (see there).
        checkpoint_utils.convert_namespace_to_omegaconf = convert_legacy_args
        with torch.serialization.safe_globals(numpy_safe_globals()):
            models, _cfg, _task = checkpoint_utils.load_model_ensemble_and_task(
                [str(out_pt)], arg_overrides={"data": str(data_dir)})
        reloaded = models[0].eval()
        logits = reloaded.get_logits(reloaded(source=source, padding_mask=None))[:, 0].float().detach()
        assert torch.equal(logits, direct), "fairseq's reloaded model differs from the saved one"
        np.save(OUT / f"{spec['name']}.logits.npy", logits.numpy().astype(np.float32))
        symbols = [reloaded.w2v_encoder.proj.out_features, list(task.target_dictionary.symbols)]

    assert symbols[1] == SPECIALS + spec["letters"], symbols[1]
    w2v = model.w2v_encoder.w2v_model
    return {"file": out_pt.name, "logits": f"{spec['name']}.logits.npy", "format": spec["fmt"],
            "serialization": "zip" if spec["zip"] else "legacy-pickle",
            "extractor_mode": spec["extractor_mode"], "layer_norm_first": spec["layer_norm_first"],
            "conv_bias": spec["conv_bias"], "normalize": spec["normalize"],
            "dict": None if spec["letters"] == STANDARD_LETTERS else "dict.alpha.ltr.txt",
            "fairseq_symbols": symbols[1], "frames": int(logits.shape[0]),
            "params": int(sum(p.numel() for p in model.parameters())),
            "max_abs_logit": float(logits.abs().max()),
            "fairseq_argmax": logits.argmax(-1).tolist(),
            "has_post_extract_proj": w2v.post_extract_proj is not None,
            "bytes": out_pt.stat().st_size}


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import fairseq

    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    wav = waveform()
    np.save(OUT / "waveform.npy", wav)
    (OUT / "dict.alpha.ltr.txt").write_text("".join(f"{s} {1000 - i}\n" for i, s in enumerate(ALPHA_LETTERS)),
                                            encoding="utf-8")
    meta = {"fairseq_version": fairseq.__version__, "torch_version": torch.__version__,
            "waveform": "waveform.npy", "sample_rate": SAMPLE_RATE, "seconds": SECONDS,
            "note": "logits are fairseq's get_logits() in eval mode, frames x symbols, fairseq dictionary order",
            "fixtures": {}}
    for i, spec in enumerate(FIXTURES):
        meta["fixtures"][spec["name"]] = info = make(spec, wav, SEED + i)
        log.info("%s: %d params, %d frames, %d bytes, max |logit| %.2f", spec["name"], info["params"],
                 info["frames"], info["bytes"], info["max_abs_logit"])
        assert info["bytes"] < 300_000
    (OUT / "fixtures.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
