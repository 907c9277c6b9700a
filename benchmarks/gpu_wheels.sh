#!/usr/bin/env bash
# Fetches, into .whl/, the pure-Python packages primer needs beyond what a GPU machine's image
# usually has (torch, lightning, torchmetrics, tensorboard are assumed there), for a machine that
# cannot reach a package index. benchmarks/gpu_check.sh installs them from .whl/.
#
#   bash benchmarks/gpu_wheels.sh     # from the repo root, where pip can reach an index
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: -d .whl \
  "hydra-core>=1.3.2,<1.4" "omegaconf>=2.3,<2.4" "hydra-joblib-launcher>=1.2,<1.3" \
  "hydra-submitit-launcher>=1.2" "submitit>=1.5"
# Hydra's override parser; published as a source archive only, so built into a (pure-Python) wheel here
python3 -m pip wheel --quiet --no-deps -w .whl "antlr4-python3-runtime==4.9.*"
ls .whl
