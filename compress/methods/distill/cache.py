"""The frozen teacher's logits, computed once and cached on disk as fp16, keyed by teacher and audio content.

The teacher is frozen and there is no data augmentation, so its logits depend only on the audio: later epochs,
resumed runs and other students sharing ``cache_dir`` never run the teacher again (it would otherwise cost about
as much as the student's own forward and backward pass).  64 bytes per 20 ms frame, ~12 MB per hour of audio.
"""
from __future__ import annotations

import logging
import os
import random
import time
import uuid
from pathlib import Path

import torch
from torch import nn

from compress.methods.distill.data import DistillData
from compress.training import autocast, collate, make_batches
from core.distributed import DistContext
from core.errors import FootprintError

log = logging.getLogger(__name__)


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


def prepare_cache(folder: Path, teacher: nn.Module, data: DistillData, do_norm: bool, group_norm: bool,
                  d: DistContext, amp_dtype: torch.dtype | None, batch_seconds: float) -> TeacherCache:
    """The cache holding every training utterance's teacher logits, running the teacher on those missing."""
    cache = TeacherCache(folder)
    lengths = [len(a) for a in data.audios]
    wanted = set(data.keys)
    for _round in range(2):  # a second round only if a part file went missing (e.g. a concurrent writer)
        cache.reload(wanted)
        # rank 0 decides what is missing, so all ranks shard the same list
        missing = d.broadcast([i for i, k in enumerate(data.keys) if k not in cache])
        if not missing:
            break
        _fill_cache(teacher, cache, missing, data, lengths, do_norm, group_norm, d, d.device, amp_dtype,
                    batch_seconds)
        d.barrier()
    cache.reload(wanted)
    still = sum(k not in cache for k in data.keys)
    if still:
        raise FootprintError(f"{cache.folder}: {still} utterances missing from the teacher cache after the "
                             "teacher pass")
    return cache


def teacher_logits(teacher: nn.Module | None, cache: TeacherCache | None, keys: list[str], idx: list[int],
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
    with torch.inference_mode(), autocast(device, amp_dtype):
        logits = teacher(x, attention_mask=attn).logits
    if logits.shape[1] != frames:
        raise FootprintError(f"distill: teacher gives {logits.shape[1]} frames where the student has {frames}")
    return logits.float().clone()


def _fill_cache(teacher: nn.Module, cache: TeacherCache, missing: list[int], data: DistillData, lengths: list[int],
                do_norm: bool, group_norm: bool, d: DistContext, device: torch.device, amp_dtype: torch.dtype | None,
                batch_seconds: float) -> None:
    """Run the frozen teacher once over the utterances not yet cached (this rank's share), saving as it goes."""
    from tqdm import tqdm

    teacher.to(device).eval()
    sub_lengths = [lengths[i] for i in missing]
    batches = make_batches(sub_lengths, int(batch_seconds * 16000), random.Random(0), shortest_first=True)
    mine = batches[d.rank::d.world_size]
    log.info("teacher pass: %d utterances to cache (%.2f h), %d batches on this rank", len(missing),
             sum(sub_lengths) / 16000 / 3600, len(mine))
    last = time.perf_counter()
    for b in tqdm(mine, desc="teacher logits", unit="batch", disable=not d.is_main):
        idx = [missing[j] for j in b]
        x, mask, _ = collate(data.audios, data.labels, idx, device, normalize=do_norm)
        with torch.inference_mode(), autocast(device, amp_dtype):
            logits = teacher(x, attention_mask=None if group_norm else mask).logits.float()
        n = teacher._get_feat_extract_output_lengths(mask.sum(-1)).tolist()
        for r, i in enumerate(idx):
            cache.add(data.keys[i], logits[r, : int(n[r])])
        if time.perf_counter() - last > 60:  # bounded loss on a kill: at most a minute of teacher work
            cache.flush()
            last = time.perf_counter()
    cache.flush()
    teacher.cpu()
