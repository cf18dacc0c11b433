"""Hugging Face model directories: import (local dir, hub id, fairseq .pt), save and load.

A model directory is what ``save_pretrained`` writes and plain transformers loads as ``Wav2Vec2ForCTC``:
``config.json``, ``model.safetensors``, ``vocab.json`` + tokenizer files (``Wav2Vec2CTCTokenizer`` over
core.text.VOCAB, word delimiter ``|``, pad/blank ``<pad>``) and ``preprocessor_config.json``
(``Wav2Vec2FeatureExtractor``, whose ``do_normalize`` carries fairseq's ``normalize`` flag).
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from core.errors import FootprintError
from core.text import VOCAB, VOCAB_DICT, WORD_DELIMITER

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


def make_processor(vocab_dir: str | Path, do_normalize: bool, return_attention_mask: bool):
    """``Wav2Vec2Processor`` = feature extractor + CTC tokenizer over our 32-symbol vocabulary."""
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

    vocab_path = Path(vocab_dir) / "vocab.json"
    vocab_path.write_text(json.dumps(VOCAB_DICT, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tokenizer = Wav2Vec2CTCTokenizer(str(vocab_path), unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                     eos_token="</s>", word_delimiter_token=WORD_DELIMITER, do_lower_case=False)
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0,
                                         do_normalize=bool(do_normalize),
                                         return_attention_mask=bool(return_attention_mask))
    return Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer)


def save_model_dir(model: Any, out_dir: str | Path, do_normalize: bool,
                   return_attention_mask: bool | None = None) -> Path:
    """Write ``model`` (a ``Wav2Vec2ForCTC`` over core.text.VOCAB) as a standard ``save_pretrained`` directory.

    ``return_attention_mask`` defaults to the Hugging Face convention: True for layer-norm extractors (lv60
    style), False for group-norm ones, which were trained on unpadded audio and take no mask.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FootprintError(f"{out}: exists and is not a directory")
    vocab = int(getattr(model.config, "vocab_size", len(VOCAB)))
    if vocab != len(VOCAB):
        raise FootprintError(f"{out}: model has {vocab} outputs, the suite's vocabulary has {len(VOCAB)}")
    if return_attention_mask is None:
        return_attention_mask = getattr(model.config, "feat_extract_norm", "group") == "layer"
    out.mkdir(parents=True, exist_ok=True)
    model.config.vocab_size = len(VOCAB)
    model.config.pad_token_id = VOCAB_DICT["<pad>"]
    model.save_pretrained(str(out), safe_serialization=True)
    processor = make_processor(out, do_normalize, return_attention_mask)
    processor.save_pretrained(str(out))
    # transformers 5 folds the feature extractor into processor_config.json; preprocessor_config.json is what
    # Wav2Vec2FeatureExtractor.from_pretrained and older transformers read, so write it as well.
    processor.feature_extractor.save_pretrained(str(out))
    log.info("saved %s (do_normalize=%s, return_attention_mask=%s)", out, do_normalize, return_attention_mask)
    return out


def _check_model_dir(p: Path) -> None:
    if not p.exists():
        raise FootprintError(f"{p}: no such model directory")
    if not p.is_dir():
        raise FootprintError(f"{p}: not a directory (expected a saved Hugging Face model)")
    if not (p / "config.json").is_file():
        raise FootprintError(f"{p}: no config.json, not a saved Hugging Face model")
    if not any((p / w).is_file() for w in WEIGHT_FILES):
        raise FootprintError(f"{p}: no weights ({' or '.join(WEIGHT_FILES[:2])})")
    config = _read_json(p / "config.json")
    model_type = config.get("model_type")
    if model_type != "wav2vec2":
        raise FootprintError(f"{p / 'config.json'}: model_type {model_type!r}, expected 'wav2vec2'")
    if (p / "preprocessor_config.json").is_file():
        _read_json(p / "preprocessor_config.json")
    check_safetensors(p / "model.safetensors")


def _read_json(f: Path) -> dict[str, Any]:
    """A JSON object from ``f``, or one line naming the file and the problem."""
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise FootprintError(f"{f}: unreadable ({_first_line(exc)})") from None
    if not isinstance(data, dict):
        raise FootprintError(f"{f}: expected a JSON object, got {type(data).__name__}")
    return data


def check_safetensors(f: Path) -> None:
    """Open ``f`` (when it exists) without loading its tensors: a corrupt or truncated file is one line.

    safetensors checks the header (length, JSON) and that the data section covers every tensor's offsets.
    """
    if not f.is_file():
        return
    try:
        from safetensors import safe_open

        with safe_open(str(f), framework="pt") as st:
            st.keys()
    except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError, ...: all mean the file cannot be used
        raise FootprintError(f"{f}: corrupt or truncated safetensors file ({_first_line(exc)})") from None


def load_model_dir(path: str | Path):
    """``(Wav2Vec2ForCTC in eval mode, Wav2Vec2FeatureExtractor)`` from a model directory, offline."""
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    p = Path(path)
    _check_model_dir(p)
    config = load_config(p)
    try:
        import torch

        # fp16-stored weights (the shipped teacher) are upcast: CPU inference and int8 expect fp32
        model = Wav2Vec2ForCTC.from_pretrained(str(p), config=config, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
        # e.g. a config.json field of the wrong type, weights that do not fit the config
        raise FootprintError(f"{p}: cannot load as Wav2Vec2ForCTC ({_first_line(exc)})") from None
    if (p / "preprocessor_config.json").is_file():
        try:
            extractor = Wav2Vec2FeatureExtractor.from_pretrained(str(p), local_files_only=True)
        except (OSError, ValueError, TypeError) as exc:
            raise FootprintError(f"{p / 'preprocessor_config.json'}: cannot load ({_first_line(exc)})") from None
    else:
        extractor = _default_extractor(model.config, p)
    model.eval()
    return model, extractor


def load_config(p: Path):  # noqa: ANN201
    """``Wav2Vec2Config`` of model directory ``p``; a field of the wrong type or value is one line naming the file."""
    from transformers import Wav2Vec2Config

    try:
        return Wav2Vec2Config.from_pretrained(str(p), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - transformers / huggingface_hub validation errors have no common base
        text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        raise FootprintError(f"{p / 'config.json'}: not a valid wav2vec 2.0 configuration "
                             f"({_first_line(text, 200)})") from None


def _default_extractor(config: Any, where: Path):
    from transformers import Wav2Vec2FeatureExtractor

    layer = getattr(config, "feat_extract_norm", "group") == "layer"
    log.warning("%s: no preprocessor_config.json; assuming do_normalize=%s (the fairseq convention for a "
                "%s-norm extractor)", where, layer, "layer" if layer else "group")
    return Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0,
                                    do_normalize=layer, return_attention_mask=layer)


def _vocab_permutation_from_hf(vocab: dict[str, int], where: str) -> list[int] | None:
    """Rows to take from a Hugging Face CTC head so that row j is our VOCAB[j]; None if already in order."""
    if vocab == VOCAB_DICT:
        return None
    # Hugging Face letter vocabularies spell the word delimiter "|" and upper-case letters, like ours.
    missing = [s for s in VOCAB if s not in vocab]
    extra = [s for s in vocab if s not in VOCAB_DICT]
    if missing or extra:
        raise FootprintError(f"{where}: vocabulary differs from the suite's 32 symbols "
                             f"(missing {missing[:6] or 'none'}, extra {extra[:6] or 'none'})")
    if vocab.get("<pad>") != 0:
        log.warning("%s: the blank <pad> is at index %s, moving it to 0", where, vocab.get("<pad>"))
    return [vocab[s] for s in VOCAB]


def _import_hf(model: Any, extractor: Any, vocab: dict[str, int] | None, out_dir: Path, where: str) -> Path:
    import torch

    if vocab is not None:
        perm = _vocab_permutation_from_hf(vocab, where)
        if perm is not None:
            idx = torch.as_tensor(perm)
            with torch.no_grad():
                model.lm_head.weight.copy_(model.lm_head.weight[idx].clone())
                model.lm_head.bias.copy_(model.lm_head.bias[idx].clone())
            log.info("%s: permuted the CTC head rows into the suite's vocabulary order", where)
    elif int(model.config.vocab_size) != len(VOCAB):
        raise FootprintError(f"{where}: no vocab.json and {model.config.vocab_size} outputs; cannot map to the "
                             f"suite's {len(VOCAB)}-symbol vocabulary")
    else:
        log.warning("%s: no vocab.json; assuming the standard letter order (<pad> <s> </s> <unk> | E T A ...)", where)
    return save_model_dir(model, out_dir, bool(extractor.do_normalize),
                          bool(getattr(extractor, "return_attention_mask", False)))


def _read_vocab(p: Path) -> dict[str, int] | None:
    f = p / "vocab.json"
    if not f.is_file():
        return None
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FootprintError(f"{f}: unreadable vocabulary ({_first_line(exc)})") from None
    if data and all(isinstance(v, dict) for v in data.values()):  # multilingual layout {lang: {tok: id}}
        raise FootprintError(f"{f}: multi-language vocabularies are not supported")
    return {str(k): int(v) for k, v in data.items()}


def import_model(src: str | Path, out_dir: str | Path, dict_path: str | Path | None = None) -> Path:
    """Import ``src`` into a standard model directory ``out_dir``; returns ``out_dir``.

    ``src``: a local Hugging Face model directory, a fairseq ``.pt`` (loaded with weights_only=True), or a hub
    id such as ``facebook/wav2vec2-base-960h`` (downloaded only when online).  ``dict_path``: a fairseq
    ``dict.ltr.txt`` for checkpoints whose letter order is not the standard one.
    """
    src_s = str(src)
    p = Path(src_s).expanduser()
    out = Path(out_dir)
    if p.exists() and out.resolve() == p.resolve():
        raise FootprintError(f"{out}: output directory must differ from the source")
    if out.is_dir() and any(out.iterdir()) and (out / "config.json").exists():
        log.warning("%s: overwriting an existing model directory", out)

    if dict_path is not None and not p.is_file():
        raise FootprintError(f"{dict_path}: --dict applies only to fairseq checkpoints (.pt), not to {src_s}")
    if p.is_file():
        from compress.model_io.fairseq import convert_fairseq_checkpoint

        model, do_normalize = convert_fairseq_checkpoint(p, dict_path)
        return save_model_dir(model, out, do_normalize)
    if p.is_dir():
        model, extractor = load_model_dir(p)
        return _import_hf(model, extractor, _read_vocab(p), out, str(p))
    if src_s.endswith((".pt", ".pth", ".bin")) or src_s.startswith((".", "/", "~")) or not _HUB_ID.match(src_s):
        raise FootprintError(f"{src_s}: no such file or directory")
    return _import_hub(src_s, out)


def _import_hub(repo_id: str, out: Path) -> Path:
    """Download from the Hugging Face hub (needs a network; honours HF_HUB_OFFLINE)."""
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    try:
        model = Wav2Vec2ForCTC.from_pretrained(repo_id, local_files_only=offline)
        extractor = Wav2Vec2FeatureExtractor.from_pretrained(repo_id, local_files_only=offline)
        vocab = None
        try:
            from huggingface_hub import hf_hub_download

            vocab = _read_vocab(Path(hf_hub_download(repo_id, "vocab.json", local_files_only=offline)).parent)
        except FootprintError:
            raise
        except Exception:  # some repos keep no vocab.json; _import_hf then checks the output count
            log.debug("%s: no vocab.json on the hub", repo_id, exc_info=True)
    except FootprintError:
        raise
    except Exception as exc:  # network down, repo missing, gated, not a CTC model ...
        hint = "offline (HF_HUB_OFFLINE set)" if offline else "not found or the hub could not be reached"
        raise FootprintError(f"{repo_id}: not a local file or directory, and as a Hugging Face hub id it is "
                             f"{hint} ({_first_line(exc)})") from None
    model.eval()
    return _import_hf(model, extractor, vocab, out, repo_id)


def _first_line(exc: BaseException | str, limit: int = 160) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
