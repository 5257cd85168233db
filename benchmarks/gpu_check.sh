#!/usr/bin/env bash
# Prepared GPU check (one CUDA GPU, under 5 minutes on an H100): gradient PSD on cuda agrees with the CPU,
# and its throughput next to a bare training step for ResNet-50 and ResNet-18 at 224 px. Prints a table last.
#   bash benchmarks/gpu_check.sh 2>&1 | tee gpu_check.log
# Extra arguments go to gpu_check.py (e.g. --device cpu --quick for a smoke run without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
echo "# host: $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv,noheader || true
fi
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 290 "$PY" benchmarks/gpu_check.py "$@"
