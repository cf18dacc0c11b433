#!/usr/bin/env bash
# The wheels tools/gpu_run.sh (and gpu_train_teacher.sh) install on the GPU machine, whose image (Python 3.12, its
# own CUDA torch, no internet) lacks them: into .whl/ (ignored by git), carried by the device tool (carry [".whl"]).
# Only what the runs need fits: the device tool carries 64 MiB in all and the tracked tree is ~49 MiB, so
# codecarbon/carbontracker (with pycountry, pydantic, ... about 12 MB) stay behind.  Versions: this project's CPU venv.
set -euo pipefail
PY=${PYTHON:-python3}
PKGS=${PKGS:-"jiwer rapidfuzz soundfile cffi pycparser espeakng-loader"}
spec=()
for p in $PKGS; do
  v=$($PY -m pip show "$p" 2>/dev/null | awk '/^Version:/{print $2}')
  spec+=("$p${v:+==$v}")
done
mkdir -p .whl
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${spec[@]}"
du -sh .whl; ls .whl
