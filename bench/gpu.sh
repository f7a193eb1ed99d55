#!/usr/bin/env bash
# The GPU checks, for a lent CUDA machine, in one short run (~5 minutes on one recent GPU):
#   1. the trainer's GPU tests (tests/trainer/test_trainer_gpu.py: CUDA, mixed precision, channels_last, NCCL,
#      exports of a GPU-trained model);
#   2. the recommendation service's GPU throughput table (copy it to services/recommend/throughput/gpu.json);
#   3. benchmark 1, trainer throughput against a bare PyTorch loop, on CUDA at 224 px.
# The data path benchmark needs the S3 stack and is not part of it. Everything lands in $OUT_DIR.
#
#   bash bench/gpu.sh                               # with the project's .venv
#   PY=python3 OUT_DIR=/tmp/gpu bash bench/gpu.sh   # with a machine's own PyTorch
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT_DIR=${OUT_DIR:-bench/results/gpu}
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.version.cuda)'
rc=0
# --noconftest: these tests start no servers (the suite's conftest imports the service stack)
timeout 300 "$PY" -m pytest -m gpu --noconftest -p no:cacheprovider -q -ra tests/trainer/test_trainer_gpu.py \
  --junitxml "$OUT_DIR/gpu-tests.xml" || rc=1
timeout 200 "$PY" -m tools.measure_throughput --device cuda --clock wall --out "$OUT_DIR/gpu.json" || rc=1
timeout 200 "$PY" -m bench --gpu --only throughput --out "$OUT_DIR" || rc=1
exit $rc
