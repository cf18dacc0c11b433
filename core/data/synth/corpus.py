"""Write the synthetic corpus (``train-clean``, ``dev-clean``, ``dev-other``) in exact LibriSpeech layout.

* Text: King James Bible clauses shipped in ``core/data/synth_text`` (see ``tools/make_kjv_text.py``).
  ``dev-*`` draw only from the held-out pool, which is fixed in the shipped files: no seed trains on it.
* Voices: espeak-ng with per-speaker variant files (``voices.py``); dev speakers are a separate pool.
* ``dev-other``: the same dev speakers, other held-out sentences, degraded by reverberation, band-limiting
  and noise at 5-20 dB SNR (``degrade.py``).
* Deterministic for a seed and package versions: every utterance has its own RNG seeded by its position,
  so the worker count and scheduling never change the audio.
* Cached under ``$W2V_FOOTPRINT_CACHE`` (default ``~/.cache/w2v-footprint``) in a folder keyed by the
  parameters; each subset is written to a temporary folder and renamed when complete, so a rerun is instant
  and an interrupted run leaves nothing half-written.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable

import numpy as np

from core.data.synth.voices import Speaker, make_speakers

log = logging.getLogger(__name__)

CORPUS_VERSION = 2  # bump when generated audio changes for the same parameters (2: reproducible across runs)
SYNTH_BLOCK = 64  # utterances spoken in order by one fresh worker process (fixed: part of the corpus's identity)
SUBSETS = ("train-clean", "dev-clean", "dev-other")
TARGET_RATE = 16_000
UTTS_PER_CHAPTER = 40


@dataclass(frozen=True)
class SynthConfig:
    hours_train: float = 10.0
    dev_utterances: int = 300
    seed: int = 0
    n_train_speakers: int = 200
    n_dev_speakers: int = 40

    def key(self) -> str:
        import espeakng_loader

        ident = dict(asdict(self), version=CORPUS_VERSION,
                     espeakng_loader=_dist_version("espeakng-loader"), numpy=np.__version__.split(".")[0])
        del espeakng_loader
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class UttPlan:
    subset: str
    utt_id: str
    rel_path: str
    text: str
    speaker_index: int  # index into the subset's speaker list
    rng_seed: tuple[int, ...]
    degrade: bool = False


@dataclass
class SubsetStats:
    subset: str
    utterances: int = 0
    seconds: float = 0.0
    speakers: int = 0
    wall_s: float = 0.0
    speed_x_realtime: float = 0.0
    extra: dict = field(default_factory=dict)


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def cache_root() -> Path:
    base = os.environ.get("W2V_FOOTPRINT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "w2v-footprint")
    return Path(base)


def default_corpus_dir(config: SynthConfig) -> Path:
    return cache_root() / "corpus" / f"synth-{config.key()}"


def sentence_pool(name: str) -> list[str]:
    text = resources.files("core.data").joinpath("synth_text", f"kjv_{name}.txt").read_text()
    return [line for line in text.splitlines() if line.strip()]


def _plan_subset(subset: str, config: SynthConfig, speakers: list[Speaker]) -> list[UttPlan]:
    pool_id = SUBSETS.index(subset)
    rng = np.random.default_rng([config.seed, 100 + pool_id])
    if subset == "train-clean":
        sentences = sentence_pool("train")
        # plan by expected duration (~0.36 s a word at 165 wpm, plus silences), so planning needs no audio
        mean_words = float(np.mean([len(s.split()) for s in sentences]))
        n = max(1, math.ceil(config.hours_train * 3600 / (mean_words * 0.36 + 0.6)))
        picks = rng.integers(0, len(sentences), n)
        texts = [sentences[i] for i in picks]
    else:
        held = sentence_pool("heldout")
        # dev-clean and dev-other take disjoint held-out sentences; the permutation depends on the seed only
        order = np.random.default_rng([config.seed, 7]).permutation(len(held))
        n = min(config.dev_utterances, len(held) // 2)
        start = 0 if subset == "dev-clean" else n
        texts = [held[i] for i in order[start:start + n]]
    plans: list[UttPlan] = []
    per_speaker: dict[int, int] = {}
    for i, text in enumerate(texts):
        s_idx = int(rng.integers(0, len(speakers))) if subset == "train-clean" else i % len(speakers)
        spk = speakers[s_idx]
        k = per_speaker.get(s_idx, 0)
        per_speaker[s_idx] = k + 1
        chapter = spk.speaker_id * 100 + pool_id * 30 + k // UTTS_PER_CHAPTER
        utt_id = f"{spk.speaker_id}-{chapter}-{k % UTTS_PER_CHAPTER:04d}"
        rel = f"{subset}/{spk.speaker_id}/{chapter}/{utt_id}.flac"
        plans.append(UttPlan(subset, utt_id, rel, text, s_idx, (config.seed, pool_id, i), subset == "dev-other"))
    return plans


# ---- worker side -------------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(data_dir: str, speakers: list[Speaker]) -> None:
    from core.data.synth.espeak import Espeak

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORKER["espeak"] = Espeak(Path(data_dir))
    _WORKER["speakers"] = speakers


def render(espeak, speaker: Speaker, text: str, rng_seed: Iterable[int], degrade: bool) -> np.ndarray:
    """Synthesise one utterance as 16 kHz float32, with silences, a noise floor and optional degradation."""
    from scipy.signal import resample_poly

    from core.data.synth.degrade import degrade_audio

    rng = np.random.default_rng(list(rng_seed))
    espeak.seed(int(rng.integers(1, 2**31)))  # espeak-ng's breath noise draws from an unseeded generator
    espeak.set_voice(speaker.voice, rate=speaker.rate_wpm, pitch=int(rng.integers(35, 65)),
                     pitch_range=int(rng.integers(30, 80)), word_gap=speaker.word_gap)
    raw = espeak.synth(text.lower())
    g = math.gcd(espeak.sample_rate, TARGET_RATE)
    audio = resample_poly(raw, TARGET_RATE // g, espeak.sample_rate // g).astype(np.float32)
    lead, trail = (int(rng.uniform(0.1, 0.45) * TARGET_RATE) for _ in range(2))
    audio = np.concatenate([np.zeros(lead, np.float32), audio, np.zeros(trail, np.float32)])
    power = float(np.mean(audio ** 2)) + 1e-12
    floor_db = rng.uniform(40, 55)  # a recording-like noise floor; digital silence is unlike real audio
    audio = audio + rng.normal(0, math.sqrt(power / 10 ** (floor_db / 10)), audio.shape).astype(np.float32)
    if degrade:
        audio = degrade_audio(audio, TARGET_RATE, rng)
    peak = float(np.max(np.abs(audio))) + 1e-9
    return (audio * (rng.uniform(0.3, 0.9) / peak)).astype(np.float32)


def _synth_one(plan: UttPlan, out_dir: str) -> float:
    import soundfile as sf

    speaker = _WORKER["speakers"][plan.speaker_index]
    audio = render(_WORKER["espeak"], speaker, plan.text, plan.rng_seed, plan.degrade)
    path = Path(out_dir) / plan.rel_path
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, TARGET_RATE, subtype="PCM_16", format="FLAC")
    return len(audio) / TARGET_RATE  # seconds


# ---- driver ----------------------------------------------------------------------------------------
def _write_transcripts(root: Path, plans: list[UttPlan]) -> None:
    chapters: dict[Path, list[UttPlan]] = {}
    for p in plans:
        chapters.setdefault((root / p.rel_path).parent, []).append(p)
    for folder, ps in chapters.items():
        spk, chap = folder.parent.name, folder.name
        lines = [f"{p.utt_id} {p.text}" for p in sorted(ps, key=lambda p: p.utt_id)]
        (folder / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")


def generate_subset(root: Path, subset: str, config: SynthConfig, jobs: int | None = None,
                    progress: bool = True) -> SubsetStats:
    """Generate one subset under ``root/LibriSpeech`` (atomic: temp folder, then rename)."""
    from tqdm import tqdm

    from core.data.synth.espeak import prepare_data_dir

    libri = root / "LibriSpeech"
    final = libri / subset
    stamp = libri / f".{subset}.json"
    if final.is_dir() and stamp.exists():
        return SubsetStats(**json.loads(stamp.read_text())["stats"])
    train_spk, dev_spk = make_speakers(config.seed, config.n_train_speakers, config.n_dev_speakers)
    speakers = train_spk if subset == "train-clean" else dev_spk
    plans = _plan_subset(subset, config, speakers)
    tmp = libri / f".tmp-{subset}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    voices_dir = root / f".espeak-{os.getpid()}"
    data_dir = prepare_data_dir(voices_dir, {s.variant_name: s.variant_text for s in train_spk + dev_spk})
    jobs = jobs or os.cpu_count() or 1
    t0 = time.perf_counter()
    seconds = 0.0
    try:
        ctx = get_context("fork") if hasattr(os, "fork") else get_context("spawn")
        # espeak-ng carries state from one utterance to the next that no API call resets (the same
        # utterance comes out a few samples longer after another one), so each fixed block of utterances is
        # spoken in order by a fresh worker process: the audio depends on neither the job count nor the scheduling
        blocks = [plans[i:i + SYNTH_BLOCK] for i in range(0, len(plans), SYNTH_BLOCK)]
        with ctx.Pool(jobs, initializer=_init_worker, initargs=(str(data_dir), speakers),
                      maxtasksperchild=1) as pool, \
                tqdm(total=len(plans), desc=f"synth {subset}", unit="utt", disable=not progress) as bar:
            for durations in pool.imap(_synth_block, [(b, str(tmp)) for b in blocks]):
                seconds += sum(durations)
                bar.update(len(durations))
        # shift the subset's folder name: plans carry "<subset>/..." relative paths inside tmp
        _write_transcripts(tmp, plans)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp / subset, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(voices_dir, ignore_errors=True)
    wall = time.perf_counter() - t0
    stats = SubsetStats(subset, len(plans), seconds, len({p.speaker_index for p in plans}), wall,
                        seconds / wall if wall else 0.0, {"jobs": jobs})
    stamp.write_text(json.dumps({"config": asdict(config), "key": config.key(), "stats": asdict(stats)}, indent=1))
    _write_speakers_txt(libri, config)
    log.info("%s: %d utterances, %.2f h in %.0f s (%.0fx real time, %d jobs)", subset, stats.utterances,
             seconds / 3600, wall, stats.speed_x_realtime, jobs)
    return stats


def _synth_block(args: tuple[list[UttPlan], str]) -> list[float]:
    block, out_dir = args
    return [_synth_one(plan, out_dir) for plan in block]


def _write_speakers_txt(libri: Path, config: SynthConfig) -> None:
    train_spk, dev_spk = make_speakers(config.seed, config.n_train_speakers, config.n_dev_speakers)
    lines = ["; Synthetic speakers: espeak-ng voice variants (see core/data/synth/voices.py)",
             ";ID  |SEX| SUBSET           |MINUTES| NAME"]
    for subset in SUBSETS:
        stamp = libri / f".{subset}.json"
        if not stamp.exists():
            continue
        minutes = json.loads(stamp.read_text())["stats"]["seconds"] / 60
        spks = train_spk if subset == "train-clean" else dev_spk
        for s in spks:
            lines.append(f"{s.speaker_id:<5}| {s.sex} | {subset:<17}| {minutes / len(spks):5.2f} | {s.voice}")
    (libri / "SPEAKERS.TXT").write_text("\n".join(lines) + "\n")


def ensure_corpus(config: SynthConfig | None = None, subsets: Iterable[str] = ("dev-clean", "dev-other"),
                  root: Path | None = None, jobs: int | None = None, progress: bool = True) -> Path:
    """The corpus root (containing ``LibriSpeech/<subset>``), generating missing subsets first."""
    config = config or SynthConfig()
    root = Path(root) if root else default_corpus_dir(config)
    root.mkdir(parents=True, exist_ok=True)
    for subset in subsets:
        if subset not in SUBSETS:
            raise ValueError(f"unknown synthetic subset {subset!r}; choose from {', '.join(SUBSETS)}")
        generate_subset(root, subset, config, jobs=jobs, progress=progress)
    return root


def cli_synth(args) -> int:  # noqa: ANN001 - argparse namespace
    defaults = SynthConfig()
    config = SynthConfig(hours_train=args.hours_train if args.hours_train is not None else defaults.hours_train,
                         dev_utterances=args.dev_utterances or defaults.dev_utterances, seed=args.seed)
    subsets = [s.strip() for s in args.subsets.split(",") if s.strip()]
    root = ensure_corpus(config, subsets, root=Path(args.out) if args.out else None, jobs=args.jobs)
    print(root / "LibriSpeech")
    return 0
