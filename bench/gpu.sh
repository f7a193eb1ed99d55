#!/usr/bin/env bash
# GPU variant of benchmarks 1 (trainer throughput) and 2 (data path) for a lent CUDA machine:
# mixed precision on (the trainer's engine uses autocast fp16 + GradScaler on CUDA; the bare
# loops do the same), channels_last, cudnn.benchmark, batch 64 (16 for the detector/segmenter),
# 224 px. One short run; the report lands in bench/results/gpu/latest.{json,md}.
#
#   bash bench/gpu.sh            # ~2-4 minutes on one recent GPU
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec timeout 540 "$PY" -m bench --gpu --only throughput,datapath --images "${BENCH_IMAGES:-2000}" --out bench/results/gpu "$@"
