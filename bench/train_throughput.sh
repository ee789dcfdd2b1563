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
  # PyTorch in its fastest setting on this machine: with the OpenMP build of OpenBLAS (the one the
  # setup installs) torch's intra-op threads are OpenBLAS's threads, so one torch thread is one BLAS
  # thread. Both settings run; the faster one is compared.
  t1=$(/usr/bin/python3 "$root/bench/torch_train.py" "$preset" "$steps" 3 --threads 1)
  t2=$(/usr/bin/python3 "$root/bench/torch_train.py" "$preset" "$steps" 3 --threads 2)
  echo "$s"
  echo "$t1"
  echo "$t2"
  /usr/bin/python3 - "$s" "$t1" "$t2" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
t = max((json.loads(a) for a in sys.argv[2:]), key=lambda r: r["tokens_per_s"])
print(f"{s['preset']}: sinklab {s['tokens_per_s']:.0f} tok/s ({s['gflops']:.0f} GFLOP/s), "
      f"pytorch {t['tokens_per_s']:.0f} tok/s ({t['threads']} threads), ratio {s['tokens_per_s'] / t['tokens_per_s']:.2f}x")
PY
done
