#!/usr/bin/env bash
# benchmarks/ucr.py's GPU runs, as one prepared command for the device machine (an H200
# with JAX, pandas, scikit-learn; no TensorFlow, no keras, no pydantic): by default
# InceptionTime's published ensemble (issue 15), 3 seeds, on the problems named.
#
#   benchmarks/device_ucr.sh [PROBLEMS [CONFIG [UCR.PY ARGUMENTS...]]]
#
# PROBLEMS: comma-separated (default: the four); CONFIG: default inception_time_ensemble,
# as shipped (200 epochs; the paper's 1500: add --set training.epochs=1500 --set
# training.reduce_lr_on_plateau.patience=50, about 7x the time).
#
# Once per checkout, here, before the call (the data and the wheels travel as carried,
# git-ignored folders; ../shared does not travel):
#
#   printf '/.whl/\n/.ucr-dev/\n' >> .git/info/exclude
#   cp -r ../shared/data/ucr-dev .ucr-dev
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl keras==3.15.1 pydantic==2.14.4 \
#     pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 namex==0.1.0 \
#     optree==0.20.0
#
# (5.5 MB: the versions seqclf was last tested with, pydantic-core the one pydantic pins;
# Python 3.12, typing-extensions, rich, typer, pandas and JAX are there.)
#
# Then, with everything committed, the device tool's run, e.g. command="SEQCLF_COMMIT=<git
# rev-parse --short HEAD here> benchmarks/device_ucr.sh ArrowHead,Coffee,PigCVP" (the tree
# travels without .git), carry=[".whl", ".ucr-dev"], timeout_s=580. The runs merge into a copy of
# docs/results/ucr.json in $OUT (--resume), written after every run, with the backend
# and device of each: copy ucr.json (and ucr.md) from what comes back into docs/results/;
# a call stopped at its limit still brings back every finished run (then
# `python benchmarks/ucr.py --render` writes the page, and the next call goes on from
# there). ucr.log has the per-run lines. The persistent compile cache is shared by the
# ensemble's members and seeds (same shapes, same programs).
set -euo pipefail
cd "$(dirname "$0")/.."
problems="${1:-ArrowHead,Coffee,PigCVP,PLAID}"
config="${2:-inception_time_ensemble}"
out="${OUT:-/tmp/device-ucr}"
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
export PYTHONPATH="$PWD:/tmp/site" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
export SEQCLF_CACHE_DIR="${SEQCLF_CACHE_DIR:-/tmp/seqclf-cache}"
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
cp docs/results/ucr.json "$out/ucr.json"
python3 benchmarks/ucr.py --data .ucr-dev --resume --output "$out/ucr" --configs "$config" \
  --limit "$config:$problems:0,1,2" --synthetic --set training.backend=jax "${@:3}" \
  2>&1 | tee "$out/ucr.log"
