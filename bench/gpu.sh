#!/usr/bin/env bash
# The GPU figures of issue 15 in one go, within a few minutes of GPU time. Run it from the
# repository root on a machine with an NVIDIA GPU, after `./run setup`; figures go to
# docs/results/scale/gpu.log:
#   1. the scoring core: naive (eager fp32), batched fp32 and bf16, and compiled, stamps/s host
#      to host, with each path's share of the GPU's matrix-product peak (target: batched >= 100,000
#      stamps/s);
#   2. the agreement of the GPU paths with the CPU reference (classifier.inference.AGREEMENT);
#   3. a rescoring of 100,000 tracklets (400,000 stamps) host to host on the batched path.
# Not yet run: no GPU machine has been lent to this project's sessions.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
LOG=docs/results/scale/gpu.log
mkdir -p docs/results/scale
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$LOG"
"$PY" bench/scoring_core.py --device cuda --compile --tracklets 5000 --naive-tracklets 100 | tee -a "$LOG"
"$PY" bench/gpu_cpu_agreement.py --compile | tee -a "$LOG"
"$PY" bench/scoring_core.py --device cuda --tracklets 100000 --naive-tracklets 50 --repeat 1 | tee -a "$LOG"
