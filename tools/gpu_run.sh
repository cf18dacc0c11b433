#!/usr/bin/env bash
# Issue 15, "the GPU run, end to end": one prepared job for the device tool (one H100/H200, 16 cores, the machine's
# own CUDA torch, no internet), time-boxed to DEADLINE_S (default 480 s) in all.  Run from the repository root:
#
#   OUT=$OUT tools/gpu_run.sh                      # on the GPU machine (device tool: carry [".whl"])
#   DRY_RUN=1 OUT=runs/gpu-dryrun PYTHON=.venv/bin/python tools/gpu_run.sh     # the same steps on this CPU, tiny
#
# Steps, each under `timeout` (SIGINT first, so pytest and footprint print what they finished), in this order:
#   0. environment: nvidia-smi, pip list, torch/CUDA, NVML vs torch GPU UUIDs; a 1-Hz nvidia-smi power log beside
#      the whole run (a cross-check of the NVML energy counter);
#   1. the test suite on the machine's CUDA torch: first the files with CUDA paths, then the rest (TESTS_S);
#   2. `tox -e bench-gpu -- --device cpu,cuda --carbon-intensity CI` if tox is there and can build its env offline
#      on the system's CUDA torch, else tox.ini's [testenv:bench-gpu] commands themselves (the reason is written to
#      why_no_tox.txt); then the CUDA variants the main job leaves out (fp16, bf16, bf16-autocast, torchao int8
#      weight-only when importable) with --paper-loop, and `footprint bench ratios` (MAIN_S, EXTRA_S);
#   3. `footprint bench run --arch large --layers 24,12,8,6 --arch-fraction 1.0 --device cuda` (fp32 at batch 1;
#      `--models arch-large-L24+fp16` works since, docs/gpu-review.md), then tools/gpu_arch_probe.py for the
#      dtypes (tolerance vs fp32), batch sizes, end-to-end and the paper's loop (ARCH_S, then what is left);
#   4. if at least DISTILL_MIN_S remain: one student (distill-L4) on the GPU with tools/distill_students.sh.
# Everything is written under WORK (default /tmp/gpu_run) and packed at the end (also on failure or timeout) into
# OUT, which the device tool returns only as at most 8 files: run.log, summary.md, env.txt, arch_probe.json,
# artifacts.tar.gz (every log, results folder, report, pytest-benchmark JSON).
#
# Offline packages: wheels for what the GPU image lacks travel in .whl (ignored by git; tools/gpu_wheels.sh makes
# them): jiwer, rapidfuzz, soundfile, cffi, pycparser, espeakng-loader.  codecarbon and carbontracker do not fit the
# 64 MiB the device tool carries (the tracked tree is ~49 MiB), so CPU rows there have no energy meter unless RAPL
# is readable; the GPU's is NVML (measured).  The CLI is the working tree's own: `python -m footprint` once that
# package exists, else `python -m bench` / `-m reports` / `-m compress` (a `footprint` shim on PATH); no project
# module is imported here, so the package reorganisation cannot break this script.
#
# Knobs: DRY_RUN, DEADLINE_S, WORK, PYTHON, CARBON_G_PER_KWH (default 475, CodeCarbon's world average, stated
# explicitly: the machine's grid is unknown), TESTS_S, MAIN_S, EXTRA_S, ARCH_S, ARCH_REPEATS, PROBE_MIN_S,
# DISTILL_MIN_S, TEST_FILES (override the test selection), SKIP_WHEELS.
set -uo pipefail
T0=$(date +%s)
ROOT=$PWD
DRY_RUN=${DRY_RUN:-0}
DEADLINE_S=${DEADLINE_S:-480}
RESERVE_S=${RESERVE_S:-15}             # kept for packing OUT at the end
KILL_GRACE_S=15                        # timeout -k: SIGKILL this long after the SIGINT
PY=${PYTHON:-python3}
WORK=${WORK:-/tmp/gpu_run}
OUT=${OUT:-$ROOT/runs/gpu-run-out}
CI_G=${CARBON_G_PER_KWH:-475}
if [ "$DRY_RUN" = 1 ]; then
  # 2 shared cores: the shipped students are hidden (W2V_FOOTPRINT_STUDENTS, an empty folder) so the main job
  # has 4 variants, not 10; fewer utterances, depths and variants everywhere; the steps and commands are the same.
  DEV=cpu; DEVS=cpu; LIMIT_ARGS=(--limit 4 --repeats 1); ARCH_FRACTION=${ARCH_FRACTION:-0.0004}
  MAIN_EXTRA=(--arch-layers 6 --arch-fraction "$ARCH_FRACTION"); ARCH_LAYERS=${ARCH_LAYERS:-24,6}
  EXTRA_MODELS=${EXTRA_MODELS:-embedded,bf16-autocast}
  export W2V_FOOTPRINT_STUDENTS=${W2V_FOOTPRINT_STUDENTS:-$WORK/no-students}
  export FOOTPRINT_BENCH_LIMIT=${FOOTPRINT_BENCH_LIMIT:-2} FOOTPRINT_BENCH_ROUNDS=${FOOTPRINT_BENCH_ROUNDS:-1}
  export FOOTPRINT_BENCH_MODELS=${FOOTPRINT_BENCH_MODELS:-embedded}
  TESTS_S=${TESTS_S:-90}; MAIN_S=${MAIN_S:-150}; EXTRA_S=${EXTRA_S:-50}; ARCH_S=${ARCH_S:-40}
  PROBE_ARGS=(--device cpu --fraction 0.0004 --layers 6,2 --dtypes fp32,bf16,bf16-autocast --batch-sizes 1,2
              --tol-utts 1 --dtype-batch 2)
  MAIN_OUT=$WORK/runs/tox-bench-gpu
  DISTILL_MIN_S=${DISTILL_MIN_S:-100000}  # not on 2 CPU cores unless asked
else
  DEV=cuda; DEVS=cpu,cuda; LIMIT_ARGS=(); ARCH_FRACTION=${ARCH_FRACTION:-1.0}
  MAIN_EXTRA=(); ARCH_LAYERS=${ARCH_LAYERS:-24,12,8,6}; EXTRA_MODELS=${EXTRA_MODELS:-embedded,fp16,bf16,bf16-autocast}
  TESTS_S=${TESTS_S:-100}; MAIN_S=${MAIN_S:-170}; EXTRA_S=${EXTRA_S:-50}; ARCH_S=${ARCH_S:-90}
  PROBE_ARGS=(--device cuda --fraction "$ARCH_FRACTION")
  MAIN_OUT=$ROOT/runs/tox-bench-gpu     # {toxinidir}/runs/tox-bench-gpu, as tox.ini
  DISTILL_MIN_S=${DISTILL_MIN_S:-120}
fi
PROBE_MIN_S=${PROBE_MIN_S:-40}
ARCH_REPEATS=${ARCH_REPEATS:-1}

rm -rf "$WORK" && mkdir -p "$WORK/logs" "$WORK/runs" "$WORK/bin" "$WORK/no-students" "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
STEPS=$WORK/steps.tsv
printf 'step\trc\tseconds\ttimebox_s\tnote\n' > "$STEPS"
say() { echo "[gpu_run +$(( $(date +%s) - T0 ))s] $*"; }
left() { echo $(( DEADLINE_S - ($(date +%s) - T0) )); }

# run_step NAME CAP_S COMMAND...: the command under `timeout` (the smaller of CAP_S and what the deadline leaves),
# its output in logs/NAME.log and here; one line in steps.tsv.  rc 124: timed out (SIGINT), 137: killed.
run_step() {
  local name=$1 cap=$2; shift 2
  local budget=$(( $(left) - RESERVE_S - KILL_GRACE_S ))
  (( budget < cap )) && cap=$budget
  if (( cap < 10 )); then
    say "$name: skipped, deadline ($(left) s left)"; printf '%s\tskip\t0\t%s\tdeadline\n' "$name" "$cap" >> "$STEPS"
    return 0
  fi
  say "$name: start (time box ${cap} s): $*"
  local s=$(date +%s)
  timeout -s INT -k "$KILL_GRACE_S" "$cap" "$@" 2>&1 | tee "$WORK/logs/$name.log"
  local rc=${PIPESTATUS[0]}
  local took=$(( $(date +%s) - s ))
  say "$name: rc=$rc in ${took} s"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$took" "$cap" "${NOTE:-}" >> "$STEPS"
  return 0
}

finish() {
  local rc=$?
  [ -n "${SMI_PID:-}" ] && kill "$SMI_PID" 2>/dev/null
  say "packing $OUT ($(left) s left of $DEADLINE_S)"
  {
    echo "# gpu_run summary ($( [ "$DRY_RUN" = 1 ] && echo "DRY RUN on CPU" || echo "$DEVS" ))"
    echo; echo "wall: $(( $(date +%s) - T0 )) s of DEADLINE_S=$DEADLINE_S; git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
    echo; echo '## steps'; echo '```'; column -t -s $'\t' "$STEPS" 2>/dev/null || cat "$STEPS"; echo '```'
    [ -f "$WORK/why_no_tox.txt" ] && { echo; echo '## tox'; cat "$WORK/why_no_tox.txt"; }
    echo; echo '## key lines'; echo '```'
    grep -h -E "passed|failed|error|WER|energy on|energy:|rtfx|model_s|main job done|tolerance|fastest|probe done|paper loop|L[0-9]+ .* b[0-9]+:|report|written|skipped|Traceback|Error" \
      "$WORK"/logs/*.log 2>/dev/null | grep -v -E "^\s*$|it/s\]|row/s\]" | cut -c1-220 | tail -120
    echo '```'
  } > "$OUT/summary.md"
  cp "$WORK/env.txt" "$OUT/env.txt" 2>/dev/null
  cp "$WORK/arch_probe.json" "$OUT/arch_probe.json" 2>/dev/null
  [ -d "$MAIN_OUT" ] && [ "$MAIN_OUT" != "$WORK/runs/tox-bench-gpu" ] && cp -r "$MAIN_OUT" "$WORK/runs/"
  tar -C "$WORK" --exclude=bin -czf "$OUT/artifacts.tar.gz" . 2>/dev/null
  if [ "$(stat -c %s "$OUT/artifacts.tar.gz" 2>/dev/null || echo 0)" -gt 15000000 ]; then  # the tool's 16 MiB/file
    tar -C "$WORK" --exclude=bin --exclude='*/hyps' --exclude='*/carbontracker' --exclude='*.sqlite' \
        -czf "$OUT/artifacts.tar.gz" .
  fi
  say "done: $(ls "$OUT" | tr '\n' ' ') (exit $rc)"
}
trap finish EXIT

# ---------------------------------------------------------------------------------------------- 0. environment
if [ -d .whl ] && [ "${SKIP_WHEELS:-$DRY_RUN}" != 1 ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$ROOT || export PYTHONPATH=$ROOT
else
  export PYTHONPATH=$ROOT
fi
export PYTHONUNBUFFERED=1 PYTHONHASHSEED=0 W2V_FOOTPRINT_CACHE=${W2V_FOOTPRINT_CACHE:-/tmp/w2v-cache}
export MPLBACKEND=Agg TQDM_MININTERVAL=5
cat > "$WORK/bin/footprint" <<EOF
#!/usr/bin/env bash
# the working tree's own CLI, whichever package layout it has
if [ -f "$ROOT/footprint/__main__.py" ]; then exec "$PY" -m footprint "\$@"; fi
case "\${1:-}" in
  report) shift; exec "$PY" -m reports report "\$@";;
  model|compress) exec "$PY" -m compress "\$@";;
  *) exec "$PY" -m bench "\$@";;
esac
EOF
chmod +x "$WORK/bin/footprint"
export PATH=$WORK/bin:$PATH
{
  echo "date: $(date -u +%FT%TZ)  host: $(hostname)  nproc: $(nproc)  DRY_RUN=$DRY_RUN"
  echo "git: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null) dirty: $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) file(s)"
  echo "python: $(command -v "$PY") $($PY -V 2>&1)  CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}"
  echo "carbon intensity: $CI_G g CO2e/kWh (CARBON_G_PER_KWH; default 475 = CodeCarbon's world average)"
  echo; nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  echo; nvidia-smi --query-gpu=index,uuid,name,pci.bus_id,memory.total,driver_version,power.limit,clocks.max.sm \
    --format=csv 2>&1 || true
  echo; $PY - <<'PY' 2>&1
import os, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      "tf32 matmul", torch.backends.cuda.matmul.allow_tf32, "cudnn tf32", torch.backends.cudnn.allow_tf32)
uuids = []
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    uuids.append(str(p.uuid))
    print(f"torch cuda:{i} {p.name} uuid={p.uuid} sm={p.major}.{p.minor} mem={p.total_memory / 2**30:.1f} GiB")
try:
    import pynvml
    pynvml.nvmlInit()
    for i in range(pynvml.nvmlDeviceGetCount()):
        h = pynvml.nvmlDeviceGetHandleByIndex(i)
        u = pynvml.nvmlDeviceGetUUID(h)
        u = u.decode() if isinstance(u, bytes) else u
        try:
            e = pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
        except pynvml.NVMLError as exc:
            e = f"unsupported ({exc})"
        match = any(u in (x, "GPU-" + x) for x in uuids)
        print(f"nvml index {i}: uuid={u} energy_mJ={e} power_W={pynvml.nvmlDeviceGetPowerUsage(h) / 1000:.0f} "
              f"matches torch's uuid: {match}")
    pynvml.nvmlShutdown()
except Exception as exc:  # noqa: BLE001
    print("nvml:", type(exc).__name__, exc)
PY
  echo; footprint bench check-device --device "$DEV" 2>&1
  echo; $PY -m pip list 2>/dev/null
} > "$WORK/env.txt" 2>&1
grep -E "^torch |^torch cuda|^nvml|carbon|^python|^(cpu|cuda)" "$WORK/env.txt"
if command -v nvidia-smi >/dev/null && [ "$DRY_RUN" != 1 ]; then
  nvidia-smi --query-gpu=timestamp,power.draw,utilization.gpu,memory.used,clocks.sm,temperature.gpu --format=csv \
    -l 1 > "$WORK/logs/nvidia_smi_1hz.csv" 2>&1 &
  SMI_PID=$!
fi

# ---------------------------------------------------------------------------------------------- 1. tests
# Files whose code has CUDA paths first (runner/check-device, the pytest-benchmark face with cpu,cuda cases, NVML,
# inference, teacher training and distillation with --device auto), then the rest while the time box lasts.
FIRST="tests/test_pytest_benchmark.py tests/test_runner.py tests/test_energy.py tests/test_inference.py
       tests/test_train_teacher.py tests/test_distill.py tests/test_methods_quantize.py tests/test_methods_variants.py"
if [ "$DRY_RUN" = 1 ]; then FIRST="tests/test_energy.py tests/test_runner.py"; REST=""; else
  REST=$(for f in tests/test_*.py; do [[ " $(echo $FIRST) " == *" $f "* ]] || echo "$f"; done | tr '\n' ' ')
fi
USER_TEST_FILES=${TEST_FILES:-}
TEST_FILES=${TEST_FILES:-$FIRST}
PYTEST=($PY -m pytest -q -rfEs -p no:cacheprovider --durations=15)
run_step tests-cuda-paths "$TESTS_S" "${PYTEST[@]}" --junitxml="$WORK/logs/junit-first.xml" $TEST_FILES
if [ -n "$REST" ] && [ -z "$USER_TEST_FILES" ]; then  # TESTS_S is for both parts together
  used=$(awk -F'\t' '$1=="tests-cuda-paths"{print $3}' "$STEPS")
  run_step tests-rest $(( TESTS_S - ${used:-0} )) "${PYTEST[@]}" --junitxml="$WORK/logs/junit-rest.xml" $REST
fi

# ---------------------------------------------------------------------------------------------- 2. bench-gpu
TOX_OK=0
if [ "$DRY_RUN" != 1 ] && command -v tox >/dev/null; then
  # tox builds its own env: offline it must find every requirement on the system (system_site_packages) or in .whl
  NOTE="tox --notest" PIP_NO_INDEX=1 PIP_FIND_LINKS=$ROOT/.whl run_step tox-env 90 tox -e bench-gpu --notest
  if [ -x .tox/bench-gpu/bin/python ] && .tox/bench-gpu/bin/python -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    TOX_OK=1
  else
    echo "tox is installed but its bench-gpu env could not be built offline or cannot see CUDA (see logs/tox-env.log); ran tox.ini's commands directly" > "$WORK/why_no_tox.txt"
  fi
elif [ "$DRY_RUN" = 1 ]; then
  echo "DRY_RUN: tox.ini's [testenv:bench-gpu] commands run directly on the CPU (no GPU here), sized down" > "$WORK/why_no_tox.txt"
else
  echo "tox is not installed on this machine and nothing can be installed from an index there (no internet); tox.ini's [testenv:bench-gpu] commands were run directly with its setenv (PYTHONHASHSEED=0, FOOTPRINT_BENCH_DEVICES=cuda) on the machine's own CUDA torch: the same commands, an env that is not tox's" > "$WORK/why_no_tox.txt"
fi
POS=(--device "$DEVS" --carbon-intensity "$CI_G" "${LIMIT_ARGS[@]}" "${MAIN_EXTRA[@]}")
if [ "$TOX_OK" = 1 ]; then
  run_step bench-gpu-tox "$MAIN_S" tox -e bench-gpu -- "${POS[@]}"
else
  run_step check-device 30 footprint bench check-device --device "$DEV"
  [ "$DRY_RUN" = 1 ] && NOTE="expected exit 2: no GPU here" run_step check-device-cuda 30 footprint bench check-device --device cuda
  run_step main-job "$MAIN_S" footprint run --device "$DEV" --out "$MAIN_OUT" "${POS[@]}"
  FOOTPRINT_BENCH_DEVICES=$DEV run_step pytest-bench 60 "$PY" -m pytest bench -q -p no:cacheprovider \
    --benchmark-json "$MAIN_OUT/pytest-benchmark.json"
fi
# the CUDA variants the main job leaves out, beside the teacher, with the paper's loop for the ratios
EXTRA=$EXTRA_MODELS
$PY -c "import torchao" 2>/dev/null && EXTRA+=,int8-weight-only-torchao || echo "torchao: not importable here: int8-weight-only-torchao not run" | tee -a "$WORK/why_no_tox.txt"
run_step dtypes "$EXTRA_S" footprint bench run --models "$EXTRA" --device "$DEV" --paper-loop --carbon-intensity "$CI_G" \
  --repeats "${EXTRA_REPEATS:-2}" --overhead-pairs 0 --no-progress "${LIMIT_ARGS[@]}" --out "$WORK/runs/dtypes"
run_step dtypes-ratios 30 footprint bench ratios "$WORK/runs/dtypes"

# ---------------------------------------------------------------------------------------------- 3. large arch
run_step arch-large "$ARCH_S" footprint bench run --arch large --layers "$ARCH_LAYERS" --arch-fraction "$ARCH_FRACTION" \
  --device "$DEV" --repeats "$ARCH_REPEATS" --overhead-pairs 0 --carbon-intensity "$CI_G" --no-progress \
  --out "$WORK/runs/arch-large"
[ -d "$WORK/runs/arch-large" ] && run_step arch-show 30 footprint bench show "$WORK/runs/arch-large"
probe_left=$(( $(left) - RESERVE_S - KILL_GRACE_S - 10 ))
if (( probe_left >= PROBE_MIN_S )); then
  run_step arch-probe $(( probe_left + 10 )) "$PY" tools/gpu_arch_probe.py "${PROBE_ARGS[@]}" \
    --deadline-s $(( probe_left - 15 )) --out "$WORK/arch_probe.json"
else
  say "arch-probe: skipped, $probe_left s left (< PROBE_MIN_S=$PROBE_MIN_S)"
  printf 'arch-probe\tskip\t0\t0\tdeadline\n' >> "$STEPS"
fi

# ---------------------------------------------------------------------------------------------- 4. distillation
d_left=$(( $(left) - RESERVE_S - KILL_GRACE_S ))
if (( d_left >= DISTILL_MIN_S )); then
  mins=$(awk -v s="$d_left" 'BEGIN { printf "%.1f", (s - 75) / 60 }')  # the rest: corpus, teacher cache, save
  OUT=$WORK/students MINUTES=$mins DEVICE=$DEV BATCH_SECONDS=640 HOURS=${DISTILL_HOURS:-2} ONLY=distill-L4 \
    PYTHON=$PY run_step distill-L4 "$d_left" bash tools/distill_students.sh
else
  say "distill: skipped, $d_left s left (< DISTILL_MIN_S=$DISTILL_MIN_S)"
  printf 'distill-L4\tskip\t0\t0\tdeadline\n' >> "$STEPS"
fi
