#!/usr/bin/env bash
# Train every student the report needs from the shipped teacher, one after another, with the suite's own
# `distill` command.  Rerun it after any interruption: a finished student directory is left alone and an
# unfinished one resumes from its checkpoint in OUT/<name>/.work.  All students share one teacher-logit cache.
#
#   MINUTES=8 AMP=bf16 tools/distill_students.sh          # 2-core CPU: 7 students x 8 min (+ the teacher pass)
#   MINUTES= EPOCHS=4 AMP=bf16 tools/distill_students.sh  # an equal epoch budget, no wall-clock cap (hours on CPU)
#   MINUTES=2 DEVICE=cuda BATCH_SECONDS=640 tools/distill_students.sh   # a GPU: minutes there are hours here
#
# One student at a time, on all cores: on a 2-vCPU VM two 1-thread runs side by side took 3.9 s/step each
# where one 2-thread run takes 2-3 s/step (the vCPUs share a core's vector units), so parallel lanes lose.
#
# Students (recipe names the benchmark and the report look up under $OUT):
#   distill-L2, distill-L3, distill-L4, distill-L6   alternate init (DistilBERT), Table 2 depth sweep; L4 = Table 1
#   distill-L4-last                                  last-N init, Figure 1 (against distill-L4)
#   distill-L4-frac                                  the same as distill-L4 on FIG2_FRACTION of its data, Figure 2
#   maxpool-conv4                                    4 conv layers + 3 max-pools, the teacher's 12 layers, Table 3
set -euo pipefail
OUT=${OUT:-compress/embedded/students}
TEACHER=${TEACHER:-embedded}
MINUTES=${MINUTES-8}                # wall-clock budget per student (the step count is fitted to it); empty: none
THREADS=${THREADS:-}                # torch threads (default: torch's, all cores)
DEVICE=${DEVICE:-auto}
AMP=${AMP:-auto}                    # bf16 helps on CPUs with AVX512-BF16/AMX; auto = GPU only
HOURS=${HOURS:-10}                  # synthetic train-clean size (the default corpus)
FRACTION=${FRACTION:-1.0}           # share of train-clean for the main students
FIG2_FRACTION=${FIG2_FRACTION:-0.25}  # share of the main students' data for the Figure-2 student
EPOCHS=${EPOCHS:-10}
LR=${LR:-5e-4}                      # see compress/methods/README.md: 2.5e-5 is too small for these few large steps
BATCH_SECONDS=${BATCH_SECONDS:-60}
CACHE=${CACHE:-$OUT/.teacher_cache}
VAL_UTTS=${VAL_UTTS:-200}            # validation utterances (held-out train speakers), evaluated every epoch
ONLY=${ONLY:-}                      # e.g. ONLY="distill-L4 distill-L2"
PY=${PYTHON:-python}

common=(--model "$TEACHER" --hours-train "$HOURS" --epochs "$EPOCHS" --lr "$LR" --batch-seconds "$BATCH_SECONDS"
        --device "$DEVICE" --amp "$AMP" --cache-dir "$CACHE" --val-utterances "$VAL_UTTS" --save-dtype float16)
if [ -n "$MINUTES" ] && [ "$MINUTES" != 0 ]; then common+=(--max-minutes "$MINUTES"); fi
if [ -n "$THREADS" ]; then common+=(--threads "$THREADS"); fi
fig2=$($PY -c "print(round($FRACTION * $FIG2_FRACTION, 4))")

run() {
  local name=$1; shift
  if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then return 0; fi
  echo "== $name: $*"
  $PY -m compress compress distill "${common[@]}" --out "$OUT/$name" "$@"
}

run distill-L4      --layers 4 --init alternate --data-fraction "$FRACTION"
run distill-L4-last --layers 4 --init last      --data-fraction "$FRACTION"
run distill-L4-frac --layers 4 --init alternate --data-fraction "$fig2"
run distill-L2      --layers 2 --init alternate --data-fraction "$FRACTION"
run distill-L3      --layers 3 --init alternate --data-fraction "$FRACTION"
run distill-L6      --layers 6 --init alternate --data-fraction "$FRACTION"
run maxpool-conv4   --student-arch maxpool-conv4 --data-fraction "$FRACTION"
if [ -z "$ONLY" ]; then rm -rf "$CACHE"; fi  # every student done: the cache has served
du -sh "$OUT"/*
