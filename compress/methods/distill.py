"""Knowledge distillation of a wav2vec 2.0 CTC teacher into a student with fewer transformer layers.

``footprint compress distill --model TEACHER --layers N --out DIR`` (see ``footprint/commands/methods.py``).

Loss (per step, over the real frames of the batch; padded frames are masked out, unlike the paper's code which
averaged over padding too)::

    L = T^2 * KL(softmax(t / T) || softmax(s / T))          eq. (1) of the paper, T = temperature (default 1)
      + feature_penalty_weight * mean(conv_features^2)       wav2vec 2.0's feature penalty on the student's conv
      + ctc_weight * CTC(s, labels)                          off by default, as in the paper

The feature penalty weight defaults to 1.0: the paper's objective is L_distill + L_feature with no weight, and
its code added the two as they were.  (fairseq's wav2vec 2.0 *pre-training* weighs it 10; fine-tuning drops it.)
Its value is small next to the KD loss once the conv stack comes from the teacher; set 0 to drop it.

Student: the teacher's config with ``layers`` transformer layers (optionally with 3 conv layers turned into
max-pooling, ``student_arch="maxpool-conv4"``).  Init ``alternate`` (DistilBERT: teacher layers i*L/N, i.e.
every k-th layer when N divides L: 24 -> 12 takes 0, 2, ..., 22) or ``last`` (the last N layers).  Every tensor
that is not dropped is copied, by state-dict key and checked with ``strict=True``: conv stack, feature projection,
*positional conv* (weight-norm g and v), *the encoder's final layer norm* (both left random by the paper's code),
the masked-time embedding and the CTC head.

Optimiser as the paper: AdamW betas (0.9, 0.98), eps 1e-6, weight decay 0.01 on every parameter, lr 2.5e-5;
linear warm-up over ``warmup_epochs`` (2; at most a fifth of the run) then linear decay to 0 at the last step,
stepped per optimizer step (the paper's code stepped per epoch); seed 42; bf16 (or fp16 + loss scaling)
autocast on GPU (bf16 on CPU when asked).  Gradient-norm clipping at 5 only guards against spikes (0 turns it off).

Data: the training subset minus a validation split that is *not* the reported test set: by default whole
speakers held out of the training subset (``val_utterances``; dev-clean stays untouched for reporting), or
``val_data``.  ``data_fraction`` keeps a seeded random share of the remaining training audio (Figure 2).
The teacher saw the held-out speakers in its own training; the split is for model selection and the training
curve, the reported WER comes from the benchmark on dev-clean.

Speed: the teacher is frozen and there is no data augmentation, so its logits depend only on the audio.
They are computed once, in a first pass (sharded over ranks), and cached on disk as fp16 (64 bytes per 20 ms
frame, ~12 MB per hour of audio) keyed by teacher weights + audio content, so later epochs, resumed runs and
other students sharing ``cache_dir`` never run the teacher again (it would otherwise cost about as much as the
student's own forward and backward pass).

Robustness: checkpoints (student, optimizer, schedule position, loss accumulators) every ``checkpoint_minutes``,
every ``checkpoint_steps`` and at each epoch end, written atomically and loaded with ``weights_only=True``;
a rerun after any kill resumes at the saved step (and refuses a checkpoint made with other settings).
``max_minutes`` fits the step count to a wall-clock budget for the training loop (not data loading or the
teacher pass) after a few calibration steps (stored, so a resumed run keeps the same schedule).
Under ``torchrun --nproc-per-node K`` it runs DistributedDataParallel (gloo on CPU, nccl on GPU); every rank
takes every K-th batch of the same shuffled epoch, the KD loss is normalised by the frame count of all ranks
together, and at the end the ranks' parameters are compared.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import random
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import FootprintError

log = logging.getLogger(__name__)

LAYER_PREFIX = "wav2vec2.encoder.layers."
LOG_COLUMNS = ["epoch", "step", "train_loss", "kd_loss", "feature_penalty", "ctc_loss", "lr", "dev_wer",
               "dev_cer", "wall_s", "audio_hours"]
WORK = ".work"


# ----------------------------------------------------------------------------------------------- config
@dataclass
class DistillConfig:
    out_dir: str
    teacher: str = "embedded"
    layers: int | None = None  # None: the init model's depth
    init: str = "alternate"  # alternate | last
    student_arch: str = "standard"  # standard | maxpool-conv{c}
    init_from: str | None = None  # start from this variant directory instead of the teacher's layers
    data: str = "embedded:train-clean"
    hours_train: float = 10.0  # size of the synthetic train-clean (embedded:train-clean only)
    val_data: str | None = None
    val_utterances: int = 200
    data_fraction: float = 1.0
    max_utterance_seconds: float = 20.0
    epochs: int = 10
    lr: float = 2.5e-5
    warmup_epochs: float = 2.0
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    temperature: float = 1.0
    feature_penalty_weight: float = 1.0
    ctc_weight: float = 0.0
    batch_seconds: float = 160.0  # padded audio seconds per batch (per rank)
    grad_clip: float = 5.0
    seed: int = 42
    device: str = "auto"
    amp: str = "auto"  # auto (bf16/fp16 on GPU, off on CPU) | bf16 (on CPU too) | fp16 (GPU) | none
    threads: int | None = None
    teacher_cache: bool = True
    cache_dir: str | None = None  # default OUT/.work/teacher_cache; share it between students of one teacher
    checkpoint_minutes: float = 5.0
    checkpoint_steps: int | None = None
    max_minutes: float | None = None
    max_steps: int | None = None  # cap on optimizer steps (smoke runs); the schedule is fitted to it
    calibration_steps: int = 20
    save_dtype: str = "float32"  # float32 | float16 (storage of the final weights; compute stays fp32)
    layerdrop: float | None = None  # None: the teacher config's
    mask_time_prob: float | None = None  # None: the teacher config's (SpecAugment-style time masking)
    freeze_feature_encoder: bool = False
    eval_batch_seconds: float = 400.0
    keep_work: bool = False  # keep OUT/.work (checkpoint, cache) after finishing
    decode_jobs: int | None = None

    def validate(self) -> None:
        if self.init not in ("alternate", "last"):
            raise FootprintError(f"distill: --init must be alternate or last, not {self.init!r}")
        if not (self.student_arch == "standard" or self.student_arch.startswith("maxpool-conv")):
            raise FootprintError(f"distill: --student-arch must be standard or maxpool-conv<N>, "
                                 f"not {self.student_arch!r}")
        if not 0 < self.data_fraction <= 1:
            raise FootprintError(f"distill: --data-fraction must be in (0, 1], got {self.data_fraction}")
        if self.epochs < 1:
            raise FootprintError("distill: --epochs must be at least 1")
        if self.save_dtype not in ("float32", "float16"):
            raise FootprintError("distill: --save-dtype must be float32 or float16")
        if self.temperature <= 0:
            raise FootprintError("distill: --temperature must be positive")


@dataclass
class DistillResult:
    out_dir: str
    steps: int
    total_steps: int
    epochs_done: float
    wall_s: float
    val_wer: float | None
    resumed_from_step: int
    param_digest: str
    already_done: bool = False
    ranks_in_sync: bool | None = None


# ----------------------------------------------------------------------------------------------- student init
def select_layers(n_teacher: int, n_student: int, init: str = "alternate") -> list[int]:
    """Teacher layer indices for the student's layers.

    ``alternate``: floor(i * L / N) - every k-th layer when N divides L (DistilBERT; the paper's 24 -> 12 took
    0, 2, ..., 22), evenly spread otherwise.  ``last``: the last N layers.
    """
    if not 1 <= n_student <= n_teacher:
        raise FootprintError(f"distill: student layers must be between 1 and the teacher's {n_teacher}, "
                             f"got {n_student}")
    if init == "alternate":
        return [i * n_teacher // n_student for i in range(n_student)]
    if init == "last":
        return list(range(n_teacher - n_student, n_teacher))
    raise FootprintError(f"distill: unknown init {init!r} (alternate | last)")


def build_student(source: nn.Module, layers: int | None = None, init: str = "alternate",
                  student_arch: str = "standard", layerdrop: float | None = None,
                  mask_time_prob: float | None = None) -> tuple[nn.Module, list[int]]:
    """The student and the source layers it took; every tensor of the student is copied from ``source``."""
    from compress.methods.storage import build_skeleton

    src_cfg = source.config
    n_src = int(src_cfg.num_hidden_layers)
    layers = n_src if layers is None else int(layers)
    keep = select_layers(n_src, layers, init)
    cfg = src_cfg.__class__.from_dict(src_cfg.to_dict())
    cfg.num_hidden_layers = layers
    if layerdrop is not None:
        cfg.layerdrop = float(layerdrop)
    if mask_time_prob is not None:
        cfg.mask_time_prob = float(mask_time_prob)
    student = build_skeleton(cfg)
    if student_arch != "standard":
        from compress.methods.maxpool import MaxPoolConfig, apply_maxpool

        try:
            conv = int(student_arch.removeprefix("maxpool-conv"))
        except ValueError:
            raise FootprintError(f"distill: bad --student-arch {student_arch!r} (maxpool-conv<N>)") from None
        if getattr(cfg, "maxpool_layers", None):
            raise FootprintError(f"distill: --student-arch {student_arch}: the initial model already has "
                                 f"max-pooling layers {cfg.maxpool_layers}")
        apply_maxpool(student, MaxPoolConfig(conv_layers=conv))
    src_sd = source.state_dict()
    new_sd: dict[str, torch.Tensor] = {}
    for key in student.state_dict():
        src_key = key
        if key.startswith(LAYER_PREFIX):
            idx, rest = key[len(LAYER_PREFIX):].split(".", 1)
            src_key = f"{LAYER_PREFIX}{keep[int(idx)]}.{rest}"
        if src_key not in src_sd:
            raise FootprintError(f"distill: the initial model has no tensor {src_key} for the student's {key}")
        new_sd[key] = src_sd[src_key].detach().clone().float()
    student.load_state_dict(new_sd, strict=True)
    return student, keep


# ----------------------------------------------------------------------------------------------- losses
def frame_mask_from_lengths(model: nn.Module, sample_lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, frames) bool: True on the real (non-padding) output frames."""
    n = model._get_feat_extract_output_lengths(sample_lengths).to(torch.long)
    return torch.arange(frames, device=sample_lengths.device)[None, :] < n[:, None]


def kd_loss_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, frame_mask: torch.Tensor,
                  temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum over real frames of T^2 KL(teacher || student), number of real frames); computed in fp32."""
    t = temperature
    log_s = F.log_softmax(student_logits.float() / t, dim=-1)
    log_t = F.log_softmax(teacher_logits.float() / t, dim=-1)
    per_frame = (log_t.exp() * (log_t - log_s)).sum(-1)  # KL(T || S) per frame
    m = frame_mask.to(per_frame.dtype)
    return (per_frame * m).sum() * (t * t), m.sum()


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, frame_mask: torch.Tensor,
            temperature: float = 1.0) -> torch.Tensor:
    """Eq. (1): mean over real frames of KL(teacher || student) over the vocabulary, times T^2."""
    s, n = kd_loss_terms(student_logits, teacher_logits, frame_mask, temperature)
    return s / n.clamp(min=1)


def feature_penalty_terms(features: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum over real frames of mean_c(features^2), frames) for conv features shaped (B, C, T)."""
    per_frame = features.float().pow(2).mean(dim=1)  # (B, T)
    m = frame_mask.to(per_frame.dtype)
    return (per_frame * m).sum(), m.sum()


def feature_penalty(features: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    s, n = feature_penalty_terms(features, frame_mask)
    return s / n.clamp(min=1)


# ----------------------------------------------------------------------------------------------- distributed
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_reduce(self, t: torch.Tensor, op: str = "sum") -> torch.Tensor:
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        return t

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.world == 1:
            return obj
        import torch.distributed as dist

        box = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            if dist.get_backend() == "nccl":
                dist.barrier(device_ids=[self.local_rank])
            else:
                dist.barrier()


def _setup_dist(cfg: DistillConfig) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    want_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if cfg.device not in ("auto", "cpu", "cuda") and not cfg.device.startswith("cuda:"):
        raise FootprintError(f"distill: --device must be auto, cpu or cuda, not {cfg.device!r}")
    if cfg.device.startswith("cuda:"):
        want_cuda = True
    d = _Dist(world=world)
    if world > 1:
        import datetime

        import torch.distributed as dist

        d.rank = int(os.environ["RANK"])
        d.local_rank = int(os.environ.get("LOCAL_RANK", d.rank))
        d.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if want_cuda else "gloo", timeout=datetime.timedelta(minutes=60))
            d.owns_group = True
    if want_cuda:
        if not torch.cuda.is_available():
            raise FootprintError("distill: --device cuda but CUDA is not available here")
        if world > 1 and d.local_rank >= torch.cuda.device_count():
            raise FootprintError(f"distill: {d.local_world} ranks on this node but {torch.cuda.device_count()} "
                                 "GPU(s); use one rank per GPU, or --device cpu")
        d.device = torch.device(cfg.device if cfg.device.startswith("cuda:") and world == 1
                                else f"cuda:{d.local_rank}")
        torch.cuda.set_device(d.device)
    return d


# ----------------------------------------------------------------------------------------------- data
@dataclass
class _Data:
    audios: list[np.ndarray]
    labels: list[list[int]]
    keys: list[str]
    val_audios: list[np.ndarray]
    val_texts: list[str]
    train_hours: float
    train_hash: str
    val_desc: str


def _subset_dir(spec: str, hours_train: float) -> Path:
    if spec.startswith("embedded:"):
        subset = spec.split(":", 1)[1].strip() or "train-clean"
        from core.data.synth.corpus import SynthConfig, ensure_corpus

        # the same synthetic corpus the teacher was trained on (keyed by its parameters, cached)
        return Path(ensure_corpus(SynthConfig(hours_train=hours_train), (subset,))) / "LibriSpeech" / subset
    return Path(spec).expanduser()


def _stable_hash(s: str) -> str:
    return hashlib.sha1(s.encode()).hexdigest()


def split_train_val(utts: list[Any], val_utterances: int) -> tuple[list[Any], list[Any]]:
    """Hold out whole speakers (in a fixed hash order) until ``val_utterances`` are held out.

    At most half of the speakers go; with a single speaker, utterances are held out instead.
    """
    if val_utterances <= 0:
        return list(utts), []
    by_spk: dict[str, list[Any]] = {}
    for u in utts:
        by_spk.setdefault(u.speaker, []).append(u)
    speakers = sorted(by_spk, key=_stable_hash)
    held: list[Any] = []
    if len(speakers) >= 2:
        for spk in speakers[: len(speakers) // 2]:
            if len(held) >= val_utterances:
                break
            held += by_spk[spk]
    else:
        held = sorted(utts, key=lambda u: _stable_hash(u.utt_id))[: min(val_utterances, len(utts) // 5)]
    held_ids = {u.utt_id for u in held}
    return [u for u in utts if u.utt_id not in held_ids], held


def _fraction(utts: list[Any], fraction: float, seed: int) -> list[Any]:
    if fraction >= 1:
        return utts
    order = sorted(utts, key=lambda u: u.utt_id)
    random.Random(seed).shuffle(order)
    target = fraction * sum(u.duration_s for u in utts)
    out, acc = [], 0.0
    for u in order:
        if acc >= target:
            break
        out.append(u)
        acc += u.duration_s
    return out


def _load_data(cfg: DistillConfig) -> _Data:
    from core.data.librispeech import Manifest, read_subset
    from compress.training import load_split

    train_dir = _subset_dir(cfg.data, cfg.hours_train)
    manifest = read_subset(train_dir)
    utts = [u for u in manifest.utterances if u.duration_s <= cfg.max_utterance_seconds]
    if cfg.val_data:
        val_m = read_subset(_subset_dir(cfg.val_data, cfg.hours_train))
        if Path(val_m.root).resolve() == Path(manifest.root).resolve() and val_m.subset == manifest.subset:
            raise FootprintError(f"{cfg.val_data}: the validation data is the training data")
        val_utts = list(val_m.subset_of(cfg.val_utterances).utterances)
        train_utts = utts
        val_desc = f"{cfg.val_data} ({len(val_utts)} utterances)"
    else:
        train_utts, val_utts = split_train_val(utts, cfg.val_utterances)
        # the spec, not the cache path: variant.json travels to other machines
        where = (f"{cfg.data} (synthetic corpus, hours_train {cfg.hours_train:g})" if cfg.data.startswith("embedded:")
                 else str(train_dir))
        val_desc = (f"{len(val_utts)} utterances of {len({u.speaker for u in val_utts})} speakers held out of "
                    f"{where}")
    train_utts = _fraction(train_utts, cfg.data_fraction, cfg.seed)
    if not train_utts:
        raise FootprintError(f"{train_dir}: no training utterances left (after the validation split and "
                             f"--data-fraction {cfg.data_fraction})")
    train_m = Manifest(manifest.root, manifest.subset, tuple(train_utts))
    audios, labels, _ = load_split(train_m, cfg.decode_jobs)
    if val_utts:
        val_audios, _, val_texts = load_split(Manifest(manifest.root, "validation", tuple(val_utts)),
                                              cfg.decode_jobs)
    else:
        val_audios, val_texts = [], []
    keys = [hashlib.blake2b(a.tobytes(), digest_size=12).hexdigest() for a in audios]
    hours = sum(len(a) for a in audios) / 16000 / 3600
    return _Data(audios, labels, keys, val_audios, val_texts, hours, train_m.content_hash, val_desc)


# ----------------------------------------------------------------------------------------------- teacher cache
class TeacherCache:
    """fp16 teacher logits per utterance, keyed by audio content, in ``part-*.safetensors`` files.

    Each writer adds new files (atomic rename), so several ranks or several students can share a folder.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.data: dict[str, torch.Tensor] = {}
        self.pending: dict[str, torch.Tensor] = {}

    def reload(self, wanted: set[str] | None = None) -> None:
        from safetensors.torch import load_file

        for p in sorted(self.folder.glob("part-*.safetensors")):
            try:
                part = load_file(str(p))
            except Exception as exc:  # noqa: BLE001 - a damaged part is recomputed, not fatal
                log.warning("%s: unreadable teacher-cache part (%s); ignored", p, exc)
                continue
            for k, v in part.items():
                if wanted is None or k in wanted:
                    self.data[k] = v

    def __contains__(self, key: str) -> bool:
        return key in self.data or key in self.pending

    def get(self, key: str) -> torch.Tensor:
        return self.data[key] if key in self.data else self.pending[key]

    def add(self, key: str, logits: torch.Tensor) -> None:
        self.pending[key] = logits.to(torch.float16).contiguous().cpu()

    def flush(self) -> None:
        if not self.pending:
            return
        from safetensors.torch import save_file

        name = f"part-{int(time.time())}-{uuid.uuid4().hex[:8]}.safetensors"
        tmp = self.folder / (name + ".tmp")
        save_file(self.pending, str(tmp))
        os.replace(tmp, self.folder / name)
        self.data.update(self.pending)
        self.pending = {}


# ----------------------------------------------------------------------------------------------- helpers
def _amp_dtype(cfg: DistillConfig, device: torch.device) -> torch.dtype | None:
    if cfg.amp == "bf16":  # asked for explicitly: also on CPU (AVX512-BF16/AMX CPUs gain ~1.25x per step)
        return torch.bfloat16
    if device.type != "cuda" or cfg.amp == "none":
        return None
    if cfg.amp == "fp16":
        return torch.float16
    if cfg.amp == "bf16" or (cfg.amp == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def lr_at(step: int, total: int, warm: int, peak: float) -> float:
    """Linear warm-up over ``warm`` steps to ``peak``, then linear decay to 0 at step ``total``."""
    if step < warm:
        return peak * (step + 1) / warm
    return peak * max(0.0, (total - step) / max(1, total - warm))


def _evaluate(model: nn.Module, audios: list[np.ndarray], texts: list[str], do_normalize: bool,
              device: torch.device, batch_seconds: float) -> tuple[float | None, float | None]:
    if not audios:
        return None, None
    from compress.training import evaluate

    return evaluate(model, audios, texts, device, do_normalize, batch_seconds)


def param_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for _, p in sorted(model.state_dict().items()):
        if isinstance(p, torch.Tensor):
            h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _config_key(cfg: DistillConfig, teacher_hash: str, data: _Data, world: int) -> str:
    keys = ("layers", "init", "student_arch", "init_from", "data_fraction", "epochs", "lr", "warmup_epochs",
            "weight_decay", "temperature", "feature_penalty_weight", "ctc_weight", "batch_seconds", "seed",
            "layerdrop", "mask_time_prob", "freeze_feature_encoder", "max_steps")
    d = {k: getattr(cfg, k) for k in keys}
    d.update(teacher=teacher_hash, train=data.train_hash, world=world)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def student_name(cfg: DistillConfig, layers: int) -> str:
    if cfg.student_arch.startswith("maxpool-conv"):
        return f"{cfg.student_arch}-L{layers}"
    return f"distill-L{layers}"


def _load_init_model(cfg: DistillConfig, teacher_model: nn.Module) -> nn.Module:
    if not cfg.init_from:
        return teacher_model
    from compress.methods.quantize import quantized_modules
    from compress.methods.storage import load_variant_dir

    model, _, _ = load_variant_dir(cfg.init_from)
    if quantized_modules(model):
        raise FootprintError(f"{cfg.init_from}: an int8 model cannot be trained; start from a float model")
    return model.float()


# ----------------------------------------------------------------------------------------------- training
def distill(cfg: DistillConfig) -> DistillResult:
    """Train a student by distillation (resumable, DDP-aware); returns where it was saved and how it went."""
    from tqdm import tqdm

    from core.inference import uses_group_norm
    from compress.methods.storage import read_variant_json, save_variant, source_info
    from compress.training import atomic_save as _atomic_save, collate, make_batches
    from compress.variants import load_variant

    cfg.validate()
    out = Path(cfg.out_dir)
    work = out / WORK
    ckpt_path = work / "checkpoint.pt"
    done = read_variant_json(out)
    if done.get("training", {}).get("finished") and not ckpt_path.exists():
        log.info("%s already holds a trained student (%s); nothing to do (use another --out to train again)",
                 out, done.get("recipe"))
        return DistillResult(str(out), done["training"].get("steps", 0), done["training"].get("steps", 0),
                             done["training"].get("epochs_done", 0), done["training"].get("wall_s", 0.0),
                             done["training"].get("val_wer"), 0, "", already_done=True)

    d = _setup_dist(cfg)
    device = d.device
    if not d.main:  # one voice: rank 0 logs, the others only warn
        logging.getLogger("compress").setLevel(logging.WARNING)
        logging.getLogger("bench").setLevel(logging.WARNING)
    threads = cfg.threads or max(1, (os.cpu_count() or 1) // d.local_world)
    if device.type == "cpu":
        torch.set_num_threads(threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    teacher_v = load_variant(cfg.teacher, device="cpu")
    teacher = teacher_v.model.float().eval()
    from compress.methods.quantize import quantized_modules

    if quantized_modules(teacher):
        raise FootprintError(f"{cfg.teacher}: an int8 teacher cannot run on this path; use a float teacher")
    for p in teacher.parameters():
        p.requires_grad_(False)
    do_norm = teacher_v.do_normalize
    group_norm = uses_group_norm(teacher)
    teacher_hash = (source_info(cfg.teacher, Path(teacher_v.path)).get("hash") if teacher_v.path
                    else f"recipe:{cfg.teacher}:{teacher_v.record.get('source_hash')}") or "unknown"

    data = _load_data(cfg)
    lengths = [len(a) for a in data.audios]
    log.info("train: %d utterances, %.2f h (fraction %.2f); validation: %s", len(lengths), data.train_hours,
             cfg.data_fraction, data.val_desc)

    init_model = _load_init_model(cfg, teacher)
    student, kept = build_student(init_model, cfg.layers, cfg.init, cfg.student_arch, cfg.layerdrop,
                                  cfg.mask_time_prob)
    layers = int(student.config.num_hidden_layers)
    name = student_name(cfg, layers)
    if init_model is not teacher:
        del init_model
    student.to(device).train()
    if cfg.freeze_feature_encoder:
        student.freeze_feature_encoder()
    log.info("student %s: %d layers taken from %s layers %s (init %s), %d params", name, layers,
             "the teacher" if not cfg.init_from else cfg.init_from, kept, cfg.init,
             sum(p.numel() for p in student.parameters()))

    batch_samples = int(cfg.batch_seconds * 16000)
    n_batches = len(make_batches(lengths, batch_samples, random.Random(0), shortest_first=True))
    steps_per_epoch = n_batches // d.world
    if steps_per_epoch < 1:
        raise FootprintError(f"{cfg.data}: {n_batches} batches of {cfg.batch_seconds} s cannot feed {d.world} "
                             "ranks; lower --batch-seconds or use more data")
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps:
        total_steps = min(total_steps, int(cfg.max_steps))

    key = _config_key(cfg, teacher_hash, data, d.world)
    if done.get("training", {}).get("finished") and done["training"].get("config_key") != key:
        raise FootprintError(f"{out}: already holds a student trained with other settings; use another --out")
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                            weight_decay=cfg.weight_decay)
    amp_dtype = _amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    zero_acc = {"n": 0, "loss": 0.0, "kd": 0.0, "pen": 0.0, "ctc": 0.0}
    state: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "total_steps": total_steps,
                             "calibrated": cfg.max_minutes is None, "wall_s": 0.0, "audio_seconds": 0.0,
                             "acc": dict(zero_acc), "val_wer": None, "config_key": key}
    resumed_from = 0
    if ckpt_path.exists():
        from compress.model_io.safe_load import load_checkpoint

        saved = load_checkpoint(ckpt_path)
        if saved.get("state", {}).get("config_key") != key:
            raise FootprintError(f"{ckpt_path}: made with other settings (teacher, data or options differ); "
                                 "rerun with the original options or use another --out")
        student.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        if saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        state.update(saved["state"])
        resumed_from = int(state["step"])
        log.info("resumed from %s at step %d/%d (epoch %d)", ckpt_path, state["step"], state["total_steps"],
                 state["epoch"] + 1)
    torch.manual_seed(cfg.seed + 1000 * d.rank + int(state["step"]))  # dropout/masking streams per rank

    # -- teacher logits: one cached pass, or on the fly
    cache: TeacherCache | None = None
    if cfg.teacher_cache:
        folder = Path(cfg.cache_dir) if cfg.cache_dir else work / "teacher_cache"
        cache = TeacherCache(folder / f"{teacher_hash.removeprefix('sha256:')[:16]}-"
                                      f"{'norm' if do_norm else 'raw'}")
        wanted = set(data.keys)
        for _round in range(2):  # a second round only if a part file went missing (e.g. a concurrent writer)
            cache.reload(wanted)
            # rank 0 decides what is missing, so all ranks shard the same list
            missing = d.broadcast([i for i, k in enumerate(data.keys) if k not in cache])
            if not missing:
                break
            _fill_cache(teacher, cache, missing, data, lengths, do_norm, group_norm, d, device, amp_dtype,
                        cfg.batch_seconds * 2)
            d.barrier()
        cache.reload(wanted)
        still = sum(k not in cache for k in data.keys)
        if still:
            raise FootprintError(f"{cache.folder}: {still} utterances missing from the teacher cache after the "
                                 "teacher pass")
        teacher = None  # not needed any more: free it
        teacher_v.model = None
    else:
        teacher.to(device)

    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1, default=str) + "\n")
    model: nn.Module = student
    if d.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # layerdrop and time masking leave some parameters unused in some steps
        model = DDP(student, device_ids=[d.local_rank] if device.type == "cuda" else None,
                    find_unused_parameters=True)

    feats: dict[str, torch.Tensor] = {}
    hook = student.wav2vec2.feature_extractor.register_forward_hook(
        lambda _m, _i, o: feats.__setitem__("x", o))

    log_path = out / "train_log.csv"
    if d.main and not log_path.exists():
        with open(log_path, "w", newline="") as fh:
            csv.writer(fh).writerow(LOG_COLUMNS)

    def warm_steps() -> int:
        return max(1, min(round(cfg.warmup_epochs * steps_per_epoch), state["total_steps"] // 5))

    def save_checkpoint() -> None:
        if d.main:
            _atomic_save({"model": student.state_dict(), "optimizer": opt.state_dict(),
                          "scaler": scaler.state_dict() if scaler.is_enabled() else {}, "state": dict(state)},
                         ckpt_path)

    def write_epoch_row(epoch_label: float) -> None:
        acc = state["acc"]
        n = max(1, acc["n"])
        wer, cer = (None, None)
        if d.main:
            wer, cer = _evaluate(student, data.val_audios, data.val_texts, do_norm, device, cfg.eval_batch_seconds)
            state["val_wer"] = wer
            row = [_fmt_epoch(epoch_label), state["step"], f"{acc['loss'] / n:.5f}", f"{acc['kd'] / n:.5f}",
                   f"{acc['pen'] / n:.5f}", f"{acc['ctc'] / n:.5f}" if cfg.ctc_weight > 0 else "",
                   f"{opt.param_groups[0]['lr']:.4e}", "" if wer is None else f"{wer:.4f}",
                   "" if cer is None else f"{cer:.4f}", f"{state['wall_s']:.1f}",
                   f"{state['audio_seconds'] / 3600:.4f}"]
            with open(log_path, "a", newline="") as fh:
                csv.writer(fh).writerow(row)
            log.info("epoch %s (step %d): loss %.4f (kd %.4f, feature penalty %.4f) validation WER %s",
                     _fmt_epoch(epoch_label), state["step"], acc["loss"] / n, acc["kd"] / n, acc["pen"] / n,
                     "n/a" if wer is None else f"{100 * wer:.2f}%")
        d.barrier()

    wall0 = time.perf_counter() - state["wall_s"]
    # --max-minutes budgets the training loop (validation included, across resumes), not data loading or the
    # one-off teacher pass, which the first student of a shared cache would otherwise pay alone
    t_start = wall0
    last_ckpt = time.perf_counter()
    calib_t0: float | None = None
    bar = tqdm(total=state["total_steps"], initial=state["step"], desc=f"distill {name}", unit="step",
               disable=not d.main)
    stop = False
    while state["step"] < state["total_steps"] and not stop:
        rng = random.Random(cfg.seed * 1000 + state["epoch"])
        batches = make_batches(lengths, batch_samples, rng, shortest_first=False)
        mine = batches[d.rank::d.world][:steps_per_epoch]
        while state["batch_in_epoch"] < len(mine) and state["step"] < state["total_steps"]:
            if not state["calibrated"] and state["step"] == resumed_from + 2:
                calib_t0 = time.perf_counter()  # after two warm-up steps
            idx = mine[state["batch_in_epoch"]]
            x, mask, y = collate(data.audios, data.labels, idx, device, normalize=do_norm)
            attn = None if group_norm else mask
            for g in opt.param_groups:
                g["lr"] = lr_at(state["step"], state["total_steps"], warm_steps(), cfg.lr)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                outp = model(x, attention_mask=attn, labels=y if cfg.ctc_weight > 0 else None)
            s_logits = outp.logits
            frames = s_logits.shape[1]
            fmask = frame_mask_from_lengths(student, mask.sum(-1), frames)
            t_logits = _teacher_logits(teacher, cache, data.keys, idx, x, attn, frames, device, amp_dtype)
            kd_sum, n_frames = kd_loss_terms(s_logits, t_logits, fmask, cfg.temperature)
            pen_sum, _ = feature_penalty_terms(feats["x"], fmask)
            ctc = outp.loss if cfg.ctc_weight > 0 else torch.zeros((), device=device)
            over = cfg.max_minutes is not None and (time.perf_counter() - t_start) > cfg.max_minutes * 60
            stats = torch.tensor([float(n_frames), float(kd_sum.detach()), float(pen_sum.detach()),
                                  float(ctc.detach()), float(sum(lengths[i] for i in idx)) / 16000,
                                  1.0 if (over and d.main) else 0.0], dtype=torch.float64)
            d.all_reduce(stats)
            denom = stats[0].item() / d.world  # DDP averages over ranks: this gives sum / all frames
            loss = (kd_sum + cfg.feature_penalty_weight * pen_sum) / max(denom, 1.0) + cfg.ctc_weight * ctc
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()

            g_frames = max(stats[0].item(), 1.0)
            kd_v, pen_v, ctc_v = stats[1].item() / g_frames, stats[2].item() / g_frames, stats[3].item() / d.world
            acc = state["acc"]
            acc["n"] += 1
            acc["kd"] += kd_v
            acc["pen"] += pen_v
            acc["ctc"] += ctc_v
            acc["loss"] += kd_v + cfg.feature_penalty_weight * pen_v + cfg.ctc_weight * ctc_v
            state["audio_seconds"] += stats[4].item()
            state["step"] += 1
            state["batch_in_epoch"] += 1
            state["wall_s"] = time.perf_counter() - wall0
            bar.update(1)
            if state["step"] % 10 == 0:
                bar.set_postfix(kd=f"{kd_v:.3f}", lr=f"{opt.param_groups[0]['lr']:.1e}")
            if (not state["calibrated"] and calib_t0 is not None
                    and state["step"] >= resumed_from + 2 + cfg.calibration_steps):
                per_step = torch.tensor([(time.perf_counter() - calib_t0) / cfg.calibration_steps,
                                         time.perf_counter() - t_start], dtype=torch.float64)
                d.all_reduce(per_step, op="max")
                left = cfg.max_minutes * 60 * 0.92 - per_step[1].item()
                fit = state["step"] + int(left / per_step[0].item())
                state["total_steps"] = max(state["step"] + 1, min(state["total_steps"], fit))
                state["calibrated"] = True
                bar.total = state["total_steps"]
                log.info("calibrated: %.3f s/step; %d steps (%.2f epochs) fit in %.1f min", per_step[0].item(),
                         state["total_steps"], state["total_steps"] / steps_per_epoch, cfg.max_minutes)
            if stats[5].item() > 0:
                log.warning("--max-minutes %.1f reached at step %d of %d: stopping and saving", cfg.max_minutes,
                            state["step"], state["total_steps"])
                state["total_steps"] = state["step"]
                stop = True
            if (time.perf_counter() - last_ckpt > cfg.checkpoint_minutes * 60
                    or (cfg.checkpoint_steps and state["step"] % cfg.checkpoint_steps == 0)):
                save_checkpoint()
                last_ckpt = time.perf_counter()
        if state["batch_in_epoch"] >= len(mine) or state["step"] >= state["total_steps"]:
            epoch_label = state["epoch"] + state["batch_in_epoch"] / steps_per_epoch
            write_epoch_row(epoch_label)
            if state["batch_in_epoch"] >= len(mine):
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
            state["acc"] = dict(zero_acc)
            save_checkpoint()
            last_ckpt = time.perf_counter()
    bar.close()
    hook.remove()

    digest = param_digest(student)
    in_sync: bool | None = None
    if d.world > 1:
        import torch.distributed as dist

        digests: list[Any] = [None] * d.world
        dist.all_gather_object(digests, digest)
        in_sync = len(set(digests)) == 1
        (log.info if in_sync else log.error)("ranks' parameters %s (%s)", "identical" if in_sync else "DIFFER",
                                             ", ".join(digests))
    result = DistillResult(str(out), state["step"], state["total_steps"], state["step"] / steps_per_epoch,
                           state["wall_s"], state["val_wer"], resumed_from, digest, ranks_in_sync=in_sync)
    if d.main:
        _finalize(cfg, student, out, name, kept, data, state, steps_per_epoch, teacher_v, teacher_hash, do_norm,
                  d, in_sync, save_variant)
        if not cfg.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    d.barrier()
    if d.owns_group:
        import torch.distributed as dist

        dist.destroy_process_group()
    return result


def _fmt_epoch(e: float) -> str:
    return str(int(e)) if abs(e - round(e)) < 1e-9 else f"{e:.3f}"


def _teacher_logits(teacher: nn.Module | None, cache: TeacherCache | None, keys: list[str], idx: list[int],
                    x: torch.Tensor, attn: torch.Tensor | None, frames: int, device: torch.device,
                    amp_dtype: torch.dtype | None) -> torch.Tensor:
    if cache is not None:
        rows = [cache.get(keys[i]) for i in idx]
        longest = max(r.shape[0] for r in rows)
        if longest != frames:
            raise FootprintError(f"distill: cached teacher logits have {longest} frames where the student has "
                                 f"{frames}; teacher and student frame rates differ")
        out = torch.zeros((len(rows), frames, rows[0].shape[1]), dtype=torch.float32)
        for r, t in enumerate(rows):
            out[r, : t.shape[0]] = t.float()
        return out.to(device, non_blocking=True)
    with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype or torch.float32,
                                                enabled=amp_dtype is not None):
        logits = teacher(x, attention_mask=attn).logits
    if logits.shape[1] != frames:
        raise FootprintError(f"distill: teacher gives {logits.shape[1]} frames where the student has {frames}")
    return logits.float().clone()


def _fill_cache(teacher: nn.Module, cache: TeacherCache, missing: list[int], data: _Data, lengths: list[int],
                do_norm: bool, group_norm: bool, d: _Dist, device: torch.device, amp_dtype: torch.dtype | None,
                batch_seconds: float) -> None:
    """Run the frozen teacher once over the utterances not yet cached (this rank's share), saving as it goes."""
    from tqdm import tqdm

    from compress.training import collate, make_batches

    teacher.to(device).eval()
    sub_lengths = [lengths[i] for i in missing]
    batches = make_batches(sub_lengths, int(batch_seconds * 16000), random.Random(0), shortest_first=True)
    mine = batches[d.rank::d.world]
    log.info("teacher pass: %d utterances to cache (%.2f h), %d batches on this rank", len(missing),
             sum(sub_lengths) / 16000 / 3600, len(mine))
    last = time.perf_counter()
    for b in tqdm(mine, desc="teacher logits", unit="batch", disable=not d.main):
        idx = [missing[j] for j in b]
        x, mask, _ = collate(data.audios, data.labels, idx, device, normalize=do_norm)
        with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype or torch.float32,
                                                    enabled=amp_dtype is not None):
            logits = teacher(x, attention_mask=None if group_norm else mask).logits.float()
        n = teacher._get_feat_extract_output_lengths(mask.sum(-1)).tolist()
        for r, i in enumerate(idx):
            cache.add(data.keys[i], logits[r, : int(n[r])])
        if time.perf_counter() - last > 60:  # bounded loss on a kill: at most a minute of teacher work
            cache.flush()
            last = time.perf_counter()
    cache.flush()
    teacher.cpu()


def _finalize(cfg: DistillConfig, student: nn.Module, out: Path, name: str, kept: list[int], data: _Data,
              state: dict[str, Any], steps_per_epoch: int, teacher_v: Any, teacher_hash: str, do_norm: bool,
              d: _Dist, in_sync: bool | None, save_variant: Any) -> None:
    student = student.float().cpu().eval()
    stage_cfg = {"layers": int(student.config.num_hidden_layers), "init": cfg.init,
                 "student_arch": cfg.student_arch, "init_from": cfg.init_from, "teacher_layers_kept": kept,
                 "train_hours": round(data.train_hours, 4), "data_fraction": cfg.data_fraction,
                 "epochs": cfg.epochs, "lr": cfg.lr, "temperature": cfg.temperature,
                 "feature_penalty_weight": cfg.feature_penalty_weight, "ctc_weight": cfg.ctc_weight,
                 "batch_seconds": cfg.batch_seconds, "seed": cfg.seed}
    training = {"finished": True, "steps": state["step"], "total_steps": state["total_steps"],
                "steps_per_epoch": steps_per_epoch, "epochs_done": round(state["step"] / steps_per_epoch, 4),
                "wall_s": round(state["wall_s"], 1), "audio_hours_processed": round(state["audio_seconds"] / 3600, 4),
                "val_wer": state["val_wer"], "validation": data.val_desc, "train_manifest_hash": data.train_hash,
                "world_size": d.world, "device": str(d.device), "ranks_in_sync": in_sync,
                "config_key": state["config_key"], "teacher_cache": cfg.teacher_cache,
                "truncated_by_budget": state["total_steps"] < cfg.epochs * steps_per_epoch}
    save_variant(student, out, recipe=name, stages=[{"name": name, "config": stage_cfg}], do_normalize=do_norm,
                 source={"spec": cfg.teacher, "hash": teacher_hash},
                 storage_dtype=torch.float16 if cfg.save_dtype == "float16" else None,
                 extra={"training": training}, trained=True)
