#!/usr/bin/env bash
# Training throughput of every attention design, tokens/s and the ratio to softmax, one table.
# usage: bench/attention_designs.sh [BUILD_DIR] [STEPS] [PRESET] [ROUNDS]
#   each design runs ROUNDS times (default 2), each time right after a softmax run; the table shows
#   its best tokens/s and the median of its ratios to the softmax run beside it
#   OPENBLAS_KERNEL=avx512 selects OpenBLAS's AVX-512 kernels (bench/openblas_kernel.sh); the
#   default keeps the environment's setting.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
steps=${2:-5}
preset=${3:-tiny}
rounds=${4:-2}
source "$root/bench/openblas_kernel.sh"
echo "# $(openblas_setting)"
OMP_WAIT_POLICY=PASSIVE "$build/bench/attention_designs" "$preset" "$steps" 1 "$rounds"
