#!/usr/bin/env bash
# Training throughput, sinklab against PyTorch, same machine, same run, same data.
# usage: bench/train_throughput.sh [BUILD_DIR] [STEPS]
#   OPENBLAS_KERNEL=avx512 unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for both engines (OpenBLAS
#   then picks its AVX-512 kernels); the default keeps the environment's setting (Haswell here).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
steps=${2:-20}
if [ "${OPENBLAS_KERNEL:-env}" = "avx512" ]; then unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; fi
echo "# OpenBLAS core type: ${OPENBLAS_CORETYPE:-unset (auto: AVX-512 here)}, L2: ${OPENBLAS_L2_SIZE:-unset}; $(nproc) cores"
for preset in tiny small; do
  s=$("$build/bench/train_throughput" "$preset" "$steps" 3)
  # PyTorch's fastest setting here: its default single intra-op thread (OpenBLAS runs 2 threads itself).
  t=$(/usr/bin/python3 "$root/bench/torch_train.py" "$preset" "$steps" 3)
  echo "$s"
  echo "$t"
  /usr/bin/python3 - "$s" "$t" <<'PY'
import json, sys
s, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{s['preset']}: sinklab {s['tokens_per_s']:.0f} tok/s ({s['gflops']:.0f} GFLOP/s), "
      f"pytorch {t['tokens_per_s']:.0f} tok/s, ratio {s['tokens_per_s'] / t['tokens_per_s']:.2f}x")
PY
done
