#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one go: the GPU and DDP tests, then benchmarks.bench on the GPU
# (and the same machine's CPU, for reference). Writes its logs and RESULTS-gpu.md to OUT_DIR.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]     # from the repo root, on a machine with a CUDA GPU
#
# Needs python3 with a CUDA build of torch, lightning, torchmetrics and tensorboard. Where the rest
# of primer's dependencies cannot be installed from an index, run benchmarks/gpu_wheels.sh where
# they can and bring .whl/ along: they are installed from there into /tmp/primer-site.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-check}}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install --quiet --no-index --no-deps --no-compile --target /tmp/primer-site .whl/*.whl || exit 1
  export PYTHONPATH="$PYTHONPATH:/tmp/primer-site"
fi
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.__version__, torch.cuda.get_device_name())" \
  2>&1 | tee "$out/gpu.txt" || exit 1
python3 -m pytest -q -rs -p no:cacheprovider -k "gpu or ddp or cuda" \
  tests/test_config.py tests/test_train.py tests/test_reliability.py tests/test_scaleout.py tests/test_cli_contract.py \
  2>&1 | tee "$out/tests.log"
tests=${PIPESTATUS[0]}
python3 -m benchmarks.bench --devices cuda,cpu --parts steady,scale --note "benchmarks/gpu_check.sh" \
  --output "$out/RESULTS-gpu.md" 2>&1 | tee "$out/bench.log"
bench=${PIPESTATUS[0]}
echo "tests exit $tests, bench exit $bench" | tee -a "$out/gpu.txt"
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ]
