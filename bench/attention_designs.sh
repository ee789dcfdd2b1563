#!/usr/bin/env bash
# Training throughput of every attention design, tokens/s and the ratio to softmax, one table.
# usage: bench/attention_designs.sh [BUILD_DIR] [STEPS] [PRESET] [ROUNDS]
#   each design runs ROUNDS times (default 2), each time right after a softmax run; the table shows
#   its best tokens/s and the median of its ratios to the softmax run beside it
#   OPENBLAS_KERNEL=avx512 unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (OpenBLAS then picks its
#   AVX-512 kernels); the default keeps the environment's setting (Haswell here).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
steps=${2:-5}
preset=${3:-tiny}
rounds=${4:-2}
if [ "${OPENBLAS_KERNEL:-env}" = "avx512" ]; then unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; fi
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}; $(nproc) cores"
OMP_WAIT_POLICY=PASSIVE "$build/bench/attention_designs" "$preset" "$steps" 1 "$rounds"
