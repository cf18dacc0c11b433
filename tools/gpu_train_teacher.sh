#!/usr/bin/env bash
# One prepared GPU job (device tool): synthesise the corpus on 16 cores, train the embedded teacher on the GPU
# within a wall-clock budget, return the fp16 model and logs under $OUT.  Wheels for the packages missing on
# the GPU image travel in .whl (see .git/info/exclude).  Calls the library directly, not the CLI, so that
# work in progress elsewhere in the tree cannot break the run.  To continue the shipped teacher rather than
# start from scratch (phases 6-7 of the model card): INIT_FROM=compress/embedded/teacher FREEZE=1 WARMUP=0.03
# PEAK_LR=2.5e-4 BATCH_SECONDS=320 HOURS=60 DEADLINE_S=545.
# DEADLINE_S=N instead of BUDGET_MIN: train for what is left of N seconds after the corpus is made and decoded
# (RESERVE_S kept for the final evaluation, save and copy), so a slow start cannot push the job past the call limit.
set -euo pipefail
T0=$(date +%s)
BUDGET_MIN=${BUDGET_MIN-6.5}
HOURS=${HOURS:-30}
if [ -d .whl ] && [ "${SKIP_WHEELS:-0}" != 1 ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 W2V_FOOTPRINT_CACHE=/tmp/cache
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true; } | tee $OUT/gpu.txt
python3 - <<PY 2>&1 | grep --line-buffered -v "utt/s\]\|step/s\]" | tee $OUT/train.log
import logging, time, json, torch, transformers
from pathlib import Path
from footprint.cli import setup_logging
setup_logging()
print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())
from core.data.synth.corpus import SynthConfig, ensure_corpus
t = time.time()
root = ensure_corpus(SynthConfig(hours_train=float("$HOURS")), ("train-clean", "dev-clean", "dev-other"),
                     root=Path("/tmp/corpus"), jobs=16)
print("synth took", round(time.time() - t), "s")
budget_min = float("$BUDGET_MIN") if "$BUDGET_MIN" else None
if "${DEADLINE_S:-}":
    # RESERVE_S covers decoding the corpus into memory, the final evaluation, the save and the copy
    left = $T0 + float("${DEADLINE_S:-0}") - time.time() - float("${RESERVE_S:-60}")
    budget_min = max(0.5, left / 60)
    print("time budget from the deadline:", round(budget_min, 2), "min")
from compress.train_teacher import TeacherTrainConfig, train_teacher
cfg = TeacherTrainConfig(out_dir="/tmp/teacher_run", corpus_root="/tmp/corpus", hours_train=float("$HOURS"),
    time_budget_minutes=budget_min, steps=int("${STEPS:-20000}"), batch_seconds=float("${BATCH_SECONDS:-400}"),
    peak_lr=float("${PEAK_LR:-2e-3}"), eval_every=int("${EVAL_EVERY:-250}"), checkpoint_minutes=2, save_dtype="float16",
    dev_eval_utterances=int("${DEV_EVAL:-300}"), decode_jobs=16, warmup_fraction=float("${WARMUP:-0.08}"),
    init_from="${INIT_FROM:-}" or None, freeze_feature_encoder="${FREEZE:-0}" == "1")
print(json.dumps(cfg.__dict__))
train_teacher(cfg)
PY
cp /tmp/teacher_run/train_log.csv /tmp/teacher_run/train_summary.json /tmp/teacher_run/train_config.json $OUT/
cp /tmp/corpus/LibriSpeech/.*.json $OUT/ 2>/dev/null || true
tar -C /tmp/teacher_run -cf $OUT/teacher_model.tar model
ls -la $OUT
