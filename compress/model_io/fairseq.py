"""fairseq wav2vec 2.0 CTC checkpoint (wav2vec_big_960h.pt style) -> transformers ``Wav2Vec2ForCTC``, no fairseq.

What a fine-tuned fairseq checkpoint holds (fairseq's ``checkpoint_utils.load_checkpoint_to_cpu`` and
``models/wav2vec/wav2vec2_asr.py``):

* settings: legacy ``args`` (``argparse.Namespace``; the pre-training settings in ``args.w2v_args``, itself a
  flat Namespace) or newer ``cfg`` (plain dicts; ``cfg['model']['w2v_args']`` is a whole pre-training config
  with ``model`` and ``task`` parts);
* ``model``: ``w2v_encoder.w2v_model.*`` (the wav2vec 2.0 encoder) and ``w2v_encoder.proj`` (the CTC head).

Shapes (layers, widths, kernels, positional-conv groups) are read off the weights and checked against the
settings; strides, heads, pre-/post-LN, the activation and ``normalize`` come from the settings.

The vocabulary: fairseq's letter dictionary is ``<s> <pad> </s> <unk>`` + ``dict.ltr.txt``; its CTC blank is
index 0 (``<s>``: the criterion's ``blank_idx`` and the decoders' ``tgt_dict.bos()``).  Ours (core.text.VOCAB)
has the blank ``<pad>`` at 0, then ``<s> </s> <unk>`` and the letters.  So fairseq's row 0 (blank) -> our row 0,
its unused ``<pad>`` -> our unused ``<s>``, ``</s>`` and ``<unk>`` stay, and each letter goes to its own row.
With the standard ``dict.ltr.txt`` (``| E T A O ...``) this is the identity, as in Hugging Face's own
conversion; with another dictionary order pass the checkpoint's ``dict.ltr.txt`` and the rows are permuted.
"""
from __future__ import annotations

import argparse
import ast
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from core.errors import FootprintError
from core.text import BLANK_ID, FAIRSEQ_SPECIALS, LETTERS, VOCAB

log = logging.getLogger(__name__)

ENC = "w2v_encoder.w2v_model."
HEAD = "w2v_encoder.proj."
# Pre-training-only modules: a CTC model never runs them (fairseq's remove_pretraining_modules drops them).
IGNORED_PREFIXES = ("quantizer.", "project_q.", "final_proj.", "target_glu.", "project_inp.", "input_quantizer.")
DEFAULT_CONV_LAYERS = "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] + [(512,2,2)]"
# fairseq activation names -> transformers ACT2FN names.
ACTIVATIONS = {"gelu": "gelu", "gelu_accurate": "gelu_new", "gelu_fast": "gelu_new", "relu": "relu",
               "linear": "linear", "swish": "swish", "tanh": "tanh"}


@dataclass
class FairseqCheckpoint:
    """The parts of a fine-tuned fairseq checkpoint the conversion needs."""

    path: Path
    fmt: str                                  # "args" (legacy Namespace) or "cfg" (dicts)
    w2v: dict[str, Any]                       # pre-training model settings (extractor, layers, ...)
    finetune: dict[str, Any]                  # fine-tuning model settings (dropouts, masking, blank_weight)
    normalize: bool                           # fairseq's waveform normalisation flag
    state: dict[str, Any] = field(repr=False)  # the model state dict


def _as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if isinstance(obj, argparse.Namespace):
        return dict(vars(obj))
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(type(obj).__name__)


def parse_conv_layers(spec: str | Sequence[Any], where: str = "conv_feature_layers") -> list[tuple[int, int, int]]:
    """fairseq's ``conv_feature_layers`` string, e.g. ``"[(512, 10, 5)] + [(512, 3, 2)] * 4"``, without eval.

    Only list/tuple literals of integers joined by ``+`` and ``* int`` are accepted.
    """
    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [ev(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return ev(node.left) + ev(node.right)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            return ev(node.left) * ev(node.right)
        raise ValueError(ast.dump(node))

    try:
        value = ev(ast.parse(spec, mode="eval")) if isinstance(spec, str) else list(spec)
        layers = [tuple(int(x) for x in t) for t in value]
        if not layers or any(len(t) != 3 for t in layers):
            raise ValueError("expected (dim, kernel, stride) triples")
    except (SyntaxError, ValueError, TypeError) as exc:
        raise FootprintError(f"{where}: cannot read conv layer spec {spec!r} ({exc})") from None
    return layers  # type: ignore[return-value]


def read_fairseq_checkpoint(path: str | Path) -> FairseqCheckpoint:
    """Load (safely) and take apart a fine-tuned fairseq wav2vec 2.0 CTC checkpoint."""
    from compress.model_io.safe_load import load_checkpoint

    p = Path(path)
    ckpt = load_checkpoint(p)
    if not isinstance(ckpt, Mapping) or "model" not in ckpt:
        raise FootprintError(f"{p}: not a fairseq checkpoint (no 'model' entry)")
    state = ckpt["model"]
    if not isinstance(state, Mapping) or not any(str(k).startswith(ENC) for k in state):
        raise FootprintError(f"{p}: not a fine-tuned wav2vec 2.0 CTC checkpoint (no '{ENC}*' weights); "
                             f"pre-trained-only checkpoints have no CTC head to import")
    try:
        if ckpt.get("cfg") is not None:
            cfg = _as_dict(ckpt["cfg"])
            finetune = _as_dict(cfg.get("model"))
            task = _as_dict(cfg.get("task"))
            w2v_args = _as_dict(finetune.get("w2v_args"))
            w2v_model = _as_dict(w2v_args.get("model")) if "model" in w2v_args else w2v_args
            w2v_task = _as_dict(w2v_args.get("task")) if "task" in w2v_args else w2v_args
            fmt = "cfg"
        elif ckpt.get("args") is not None:
            finetune = _as_dict(ckpt["args"])
            task = finetune
            w2v_model = w2v_task = _as_dict(finetune.get("w2v_args"))
            fmt = "args"
        else:
            raise FootprintError(f"{p}: fairseq checkpoint without settings (neither 'cfg' nor 'args')")
    except TypeError as exc:
        raise FootprintError(f"{p}: unexpected settings type {exc} in the checkpoint") from None
    if not w2v_model:
        raise FootprintError(f"{p}: the checkpoint has no pre-training settings (w2v_args); it was fine-tuned "
                             f"from {finetune.get('w2v_path')!r}, which this importer does not read")
    # fairseq asserts the fine-tuning and pre-training flags agree; the model-level flag is the one it checks.
    normalize = finetune.get("normalize", task.get("normalize", w2v_task.get("normalize", False)))
    return FairseqCheckpoint(path=p, fmt=fmt, w2v=w2v_model, finetune=finetune, normalize=bool(normalize),
                             state=dict(state))


def read_letter_dict(path: str | Path) -> list[str]:
    """fairseq's full symbol list for a ``dict.ltr.txt``: the four specials, then the file's symbols in order."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FootprintError(f"{p}: cannot read dictionary ({exc.strerror or exc})") from None
    symbols = list(FAIRSEQ_SPECIALS)
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        sym = line.split()[0]
        if sym in symbols:
            if "#fairseq:overwrite" in line:
                continue
            raise FootprintError(f"{p}:{n}: symbol {sym!r} appears twice")
        symbols.append(sym)
    return symbols


def vocab_permutation(fairseq_symbols: Sequence[str], where: str = "dictionary") -> list[int]:
    """``perm`` such that ``our_row[j] = fairseq_row[perm[j]]`` for every symbol j of core.text.VOCAB."""
    index = {s: i for i, s in enumerate(fairseq_symbols)}
    if "<ctc_blank>" in index:
        raise FootprintError(f"{where}: a separate <ctc_blank> symbol is not supported (blank must be <s> = 0)")
    extra = [s for s in fairseq_symbols if s not in VOCAB]
    missing = [s for s in LETTERS if s not in index]
    if extra or missing:
        raise FootprintError(f"{where}: vocabulary differs from the 32-symbol letter set "
                             f"(extra {extra or 'none'}, missing {missing or 'none'})")
    # Blank and specials by role: fairseq <s> (its blank, 0) -> our <pad> (blank, 0); its <pad> -> our <s>.
    by_role = {"<pad>": index["<s>"], "<s>": index["<pad>"], "</s>": index["</s>"], "<unk>": index["<unk>"]}
    perm = [by_role[s] if s in by_role else index[s] for s in VOCAB]
    assert perm[BLANK_ID] == 0 and sorted(perm) == list(range(len(VOCAB)))
    return perm


def _conv_keys(state: Mapping[str, Any]) -> int:
    pat = re.compile(re.escape(ENC) + r"feature_extractor\.conv_layers\.(\d+)\.0\.weight$")
    return 1 + max((int(m.group(1)) for k in state if (m := pat.match(k))), default=-1)


def _layer_count(state: Mapping[str, Any]) -> int:
    pat = re.compile(re.escape(ENC) + r"encoder\.layers\.(\d+)\.")
    return 1 + max((int(m.group(1)) for k in state if (m := pat.match(k))), default=-1)


def hf_config_from_fairseq(ck: FairseqCheckpoint):
    """A ``Wav2Vec2Config`` equivalent to the checkpoint's model (shapes from the weights, the rest from settings)."""
    from transformers import Wav2Vec2Config

    p, w, ft, st = ck.path, ck.w2v, ck.finetune, ck.state

    def unsupported(what: str) -> FootprintError:
        return FootprintError(f"{p}: {what} is not supported by the wav2vec 2.0 CTC importer")

    layer_type = ft.get("layer_type") or w.get("layer_type") or "transformer"
    if layer_type != "transformer":
        raise unsupported(f"layer_type {layer_type!r}")
    if int(w.get("pos_conv_depth", 1) or 1) > 1:
        raise unsupported(f"pos_conv_depth {w.get('pos_conv_depth')}")
    if w.get("conv_pos_batch_norm"):
        raise unsupported("conv_pos_batch_norm")
    if int(w.get("crop_seq_to_multiple", 1) or 1) != 1:
        raise unsupported(f"crop_seq_to_multiple {w.get('crop_seq_to_multiple')}")
    if w.get("quantize_input"):
        raise unsupported("quantize_input")
    if float(ft.get("blank_weight", 0) or 0) != 0 and ft.get("blank_mode", "add") != "add":
        raise unsupported(f"blank_mode {ft.get('blank_mode')!r} with a blank_weight")

    mode = w.get("extractor_mode", "default")
    if mode not in ("default", "layer_norm"):
        raise unsupported(f"extractor_mode {mode!r}")
    conv_spec = parse_conv_layers(w.get("conv_feature_layers") or DEFAULT_CONV_LAYERS, f"{p}: conv_feature_layers")
    n_conv = _conv_keys(st)
    if n_conv != len(conv_spec):
        raise FootprintError(f"{p}: settings list {len(conv_spec)} conv layers but the weights have {n_conv}")
    conv_dim, conv_kernel = [], []
    for i, (dim, k, _s) in enumerate(conv_spec):
        wt = st[f"{ENC}feature_extractor.conv_layers.{i}.0.weight"]
        if tuple(wt.shape[0::2]) != (dim, k):
            raise FootprintError(f"{p}: conv layer {i} has shape {tuple(wt.shape)}, settings say dim {dim} kernel {k}")
        conv_dim.append(int(wt.shape[0]))
        conv_kernel.append(int(wt.shape[2]))
    conv_bias = f"{ENC}feature_extractor.conv_layers.0.0.bias" in st
    if bool(w.get("conv_bias", False)) != conv_bias:
        raise FootprintError(f"{p}: settings say conv_bias={w.get('conv_bias')} but the weights disagree")

    hidden = int(st[f"{ENC}encoder.layer_norm.weight"].shape[0])
    layers = _layer_count(st)
    ffn = int(st[f"{ENC}encoder.layers.0.fc1.weight"].shape[0]) if layers else int(w.get("encoder_ffn_embed_dim", 3072))
    for name, want, got in (("encoder_embed_dim", w.get("encoder_embed_dim", 768), hidden),
                            ("encoder_layers", w.get("encoder_layers", 12), layers),
                            ("encoder_ffn_embed_dim", w.get("encoder_ffn_embed_dim", 3072), ffn)):
        if int(want) != got:
            raise FootprintError(f"{p}: settings say {name}={want} but the weights have {got}")
    heads = int(w.get("encoder_attention_heads", 12))
    if hidden % heads:
        raise FootprintError(f"{p}: {hidden} is not divisible by {heads} attention heads")
    pos_v = st.get(f"{ENC}encoder.pos_conv.0.weight_v",
                   st.get(f"{ENC}encoder.pos_conv.0.parametrizations.weight.original1"))
    if pos_v is None:
        raise FootprintError(f"{p}: no weight-normed positional conv (encoder.pos_conv.0.weight_v) in the weights")
    conv_pos, pos_groups = int(pos_v.shape[2]), hidden // int(pos_v.shape[1])
    act = w.get("activation_fn", "gelu")
    if act not in ACTIVATIONS:
        raise unsupported(f"activation_fn {act!r}")
    n_out = int(st[f"{HEAD}weight"].shape[0]) if f"{HEAD}weight" in st else 0
    if not n_out:
        raise FootprintError(f"{p}: no CTC head ({HEAD}weight) in the checkpoint")

    def f(key: str, default: float = 0.0, src: Mapping[str, Any] = ft) -> float:
        v = src.get(key, w.get(key, default))
        return float(default if v is None else v)

    mask_prob = f("mask_prob", 0.0)
    return Wav2Vec2Config(
        vocab_size=len(VOCAB), pad_token_id=BLANK_ID, bos_token_id=1, eos_token_id=2,
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ffn,
        hidden_act=ACTIVATIONS[act], feat_extract_activation="gelu",
        conv_dim=tuple(conv_dim), conv_kernel=tuple(conv_kernel), conv_stride=tuple(s for _, _, s in conv_spec),
        conv_bias=conv_bias, feat_extract_norm="group" if mode == "default" else "layer",
        do_stable_layer_norm=bool(w.get("layer_norm_first", False)),
        num_conv_pos_embeddings=conv_pos, num_conv_pos_embedding_groups=pos_groups,
        layer_norm_eps=1e-5,  # fairseq LayerNorm / Fp32GroupNorm default
        # Dropout and masking as the fine-tuning run used them (fairseq overrides the pre-training values).
        hidden_dropout=f("dropout"), attention_dropout=f("attention_dropout"),
        activation_dropout=f("activation_dropout"), feat_proj_dropout=f("dropout_input"),
        final_dropout=f("final_dropout"), layerdrop=f("layerdrop", f("encoder_layerdrop")),
        apply_spec_augment=mask_prob > 0, mask_time_prob=mask_prob, mask_time_length=int(f("mask_length", 10)),
        mask_feature_prob=f("mask_channel_prob"), mask_feature_length=int(f("mask_channel_length", 10)),
        ctc_loss_reduction="mean", ctc_zero_infinity=True, architectures=["Wav2Vec2ForCTC"],
    )


def _key_map(config: Any, hf_keys: set[str]) -> dict[str, str]:
    """fairseq key -> transformers key for every weight a CTC model uses."""
    fe, enc = "wav2vec2.feature_extractor.conv_layers", "wav2vec2.encoder"
    m: dict[str, str] = {}
    for i in range(len(config.conv_dim)):
        m[f"{ENC}feature_extractor.conv_layers.{i}.0.weight"] = f"{fe}.{i}.conv.weight"
        m[f"{ENC}feature_extractor.conv_layers.{i}.0.bias"] = f"{fe}.{i}.conv.bias"
        m[f"{ENC}feature_extractor.conv_layers.{i}.2.1.weight"] = f"{fe}.{i}.layer_norm.weight"  # layer_norm mode
        m[f"{ENC}feature_extractor.conv_layers.{i}.2.1.bias"] = f"{fe}.{i}.layer_norm.bias"
    m[f"{ENC}feature_extractor.conv_layers.0.2.weight"] = f"{fe}.0.layer_norm.weight"  # group norm, layer 0 only
    m[f"{ENC}feature_extractor.conv_layers.0.2.bias"] = f"{fe}.0.layer_norm.bias"
    for suffix in ("weight", "bias"):
        m[f"{ENC}post_extract_proj.{suffix}"] = f"wav2vec2.feature_projection.projection.{suffix}"
        m[f"{ENC}layer_norm.{suffix}"] = f"wav2vec2.feature_projection.layer_norm.{suffix}"
        m[f"{ENC}encoder.layer_norm.{suffix}"] = f"{enc}.layer_norm.{suffix}"
        m[f"{HEAD}{suffix}"] = f"lm_head.{suffix}"
    m[f"{ENC}mask_emb"] = "wav2vec2.masked_spec_embed"
    # Weight norm: g (magnitude) and v (direction); transformers >= 4.3x / 5 use torch parametrizations.
    pc = f"{enc}.pos_conv_embed.conv"
    g_hf, v_hf = ((f"{pc}.parametrizations.weight.original0", f"{pc}.parametrizations.weight.original1")
                  if f"{pc}.parametrizations.weight.original0" in hf_keys else (f"{pc}.weight_g", f"{pc}.weight_v"))
    for fs_g, fs_v in (("weight_g", "weight_v"), ("parametrizations.weight.original0",
                                                  "parametrizations.weight.original1")):
        m[f"{ENC}encoder.pos_conv.0.{fs_g}"] = g_hf
        m[f"{ENC}encoder.pos_conv.0.{fs_v}"] = v_hf
    m[f"{ENC}encoder.pos_conv.0.bias"] = f"{pc}.bias"
    parts = {"self_attn.q_proj": "attention.q_proj", "self_attn.k_proj": "attention.k_proj",
             "self_attn.v_proj": "attention.v_proj", "self_attn.out_proj": "attention.out_proj",
             "self_attn_layer_norm": "layer_norm", "fc1": "feed_forward.intermediate_dense",
             "fc2": "feed_forward.output_dense", "final_layer_norm": "final_layer_norm"}
    for n in range(config.num_hidden_layers):
        for fs, hf in parts.items():
            for suffix in ("weight", "bias"):
                m[f"{ENC}encoder.layers.{n}.{fs}.{suffix}"] = f"{enc}.layers.{n}.{hf}.{suffix}"
    return m


def convert_state_dict(ck: FairseqCheckpoint, config: Any, hf_keys: set[str],
                       perm: Sequence[int]) -> dict[str, Any]:
    """The checkpoint's weights under transformers' names, CTC rows in our vocabulary order."""
    import torch

    key_map = _key_map(config, hf_keys)
    out: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in ck.state.items():
        if key in key_map:
            out[key_map[key]] = value.detach().to(torch.float32).clone()
        elif key.startswith(ENC) and key[len(ENC):].startswith(IGNORED_PREFIXES):
            ignored.append(key[len(ENC):])
        else:
            raise FootprintError(f"{ck.path}: unexpected weight {key!r}: this checkpoint's architecture is not "
                                 f"the wav2vec 2.0 CTC model the importer knows")
    if ignored:
        log.info("%s: ignoring %d pre-training-only tensors (%s): a CTC model does not use them",
                 ck.path, len(ignored), ", ".join(sorted({k.split(".")[0] for k in ignored})))

    idx = torch.as_tensor(list(perm), dtype=torch.long)
    out["lm_head.weight"] = out["lm_head.weight"][idx].contiguous()
    out["lm_head.bias"] = out["lm_head.bias"][idx].contiguous()
    blank_weight = float(ck.finetune.get("blank_weight", 0) or 0)
    if blank_weight:
        # fairseq's get_logits adds blank_weight to the blank logit (blank_mode "add"): fold it into the bias.
        out["lm_head.bias"][BLANK_ID] += blank_weight
        log.info("%s: folded blank_weight %.3g into the blank logit's bias", ck.path, blank_weight)
    proj = "wav2vec2.feature_projection.projection"
    if f"{proj}.weight" not in out:
        # fairseq has no post_extract_proj when the conv width equals the model width: an identity projection.
        dim = config.conv_dim[-1]
        if dim != config.hidden_size:
            raise FootprintError(f"{ck.path}: post_extract_proj missing although conv width {dim} != "
                                 f"model width {config.hidden_size}")
        out[f"{proj}.weight"] = torch.eye(dim)
        out[f"{proj}.bias"] = torch.zeros(dim)
    if "wav2vec2.masked_spec_embed" not in out and "wav2vec2.masked_spec_embed" in hf_keys:
        out["wav2vec2.masked_spec_embed"] = torch.zeros(config.hidden_size)  # only used when training with masks
    return out


def convert_fairseq_checkpoint(path: str | Path, dict_path: str | Path | None = None):
    """Build a ``Wav2Vec2ForCTC`` (eval mode) from a fairseq CTC checkpoint; returns ``(model, do_normalize)``.

    ``dict_path``: the checkpoint's ``dict.ltr.txt``, needed only when it is not the standard letter order.
    """
    import torch
    from transformers import Wav2Vec2ForCTC

    ck = read_fairseq_checkpoint(path)
    config = hf_config_from_fairseq(ck)
    n_out = int(ck.state[f"{HEAD}weight"].shape[0])
    if dict_path is not None:
        symbols = read_letter_dict(dict_path)
        where = str(dict_path)
    else:
        symbols = list(FAIRSEQ_SPECIALS) + list(LETTERS)
        where = f"{ck.path} (standard dict.ltr.txt assumed)"
        if n_out != len(symbols):
            raise FootprintError(f"{ck.path}: CTC head has {n_out} outputs, not the standard 32-letter dictionary; "
                                 f"pass the checkpoint's dict.ltr.txt (--dict)")
    if n_out != len(symbols):
        raise FootprintError(f"{where}: {len(symbols)} symbols but the CTC head has {n_out} outputs")
    perm = vocab_permutation(symbols, where)

    model = Wav2Vec2ForCTC(config)
    hf_keys = set(model.state_dict())
    new_state = convert_state_dict(ck, config, hf_keys, perm)
    missing = sorted(hf_keys - set(new_state))
    unexpected = sorted(set(new_state) - hf_keys)
    if missing or unexpected:
        raise FootprintError(f"{ck.path}: weights do not fit the model (missing {missing[:4]}, "
                             f"unexpected {unexpected[:4]})")
    for k, v in model.state_dict().items():
        if tuple(v.shape) != tuple(new_state[k].shape):
            raise FootprintError(f"{ck.path}: {k} has shape {tuple(new_state[k].shape)}, expected {tuple(v.shape)}")
    with torch.no_grad():
        model.load_state_dict(new_state, strict=True)
    model.eval()
    log.info("%s: fairseq %s-format checkpoint -> Wav2Vec2ForCTC (%d layers, hidden %d, %s extractor, %s, "
             "normalize=%s)", ck.path, ck.fmt, config.num_hidden_layers, config.hidden_size,
             config.feat_extract_norm, "pre-LN" if config.do_stable_layer_norm else "post-LN", ck.normalize)
    return model, ck.normalize
