#!/usr/bin/env bash
# Training throughput, sinklab against PyTorch, same machine, same run, same data, and both against
# the machine's sgemm peak and FMA ceiling measured in the same run.
# usage: bench/train_throughput.sh [BUILD_DIR] [STEPS] [ROUNDS]
#   ROUNDS (default 3): sinklab, PyTorch with 1 thread and PyTorch with 2 threads run in turn,
#   ROUNDS times over; each keeps its best round, so that a burst of other load on a shared
#   machine slows one round, not one engine.
#   OPENBLAS_KERNEL=avx512 selects OpenBLAS's AVX-512 kernels for both engines
#   (bench/openblas_kernel.sh); the default keeps the environment's setting.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
steps=${2:-20}
rounds=${3:-3}
source "$root/bench/openblas_kernel.sh"
echo "# $(openblas_setting); best of $rounds rounds"
peak=$("$build/bench/sgemm_peak")
echo "$peak"
for preset in tiny small; do
  runs=()
  for ((r = 1; r <= rounds; r++)); do
    runs+=("$("$build/bench/train_throughput" "$preset" "$steps" 3)")
    # PyTorch in its fastest setting on this machine: with the OpenMP build of OpenBLAS (the one the
    # setup installs) torch's intra-op threads are OpenBLAS's threads, so one torch thread is one
    # BLAS thread. Both settings run; the faster one is compared.
    runs+=("$(/usr/bin/python3 "$root/bench/torch_train.py" "$preset" "$steps" 3 --threads 1)")
    runs+=("$(/usr/bin/python3 "$root/bench/torch_train.py" "$preset" "$steps" 3 --threads 2)")
  done
  printf '%s\n' "${runs[@]}"
  /usr/bin/python3 - "$peak" "${runs[@]}" <<'PY'
import json, sys
peak = json.loads(sys.argv[1])
runs = [json.loads(a) for a in sys.argv[2:]]
ours = [r for r in runs if r["engine"] == "sinklab"]
torch = [r for r in runs if r["engine"] == "pytorch"]
s = max(ours, key=lambda r: r["tokens_per_s"])
t = max(torch, key=lambda r: r["tokens_per_s"])
flops_per_token = s["gflops"] / s["tokens_per_s"]  # GFLOP per token, the same model in both engines
t_gflops = t["tokens_per_s"] * flops_per_token
print(f"{s['preset']}: sinklab {s['tokens_per_s']:.0f} tok/s ({s['gflops']:.0f} GFLOP/s, "
      f"{100 * s['gflops'] / peak['gflops']:.0f}% of the {peak['gflops']:.0f} GFLOP/s sgemm peak), "
      f"pytorch {t['tokens_per_s']:.0f} tok/s ({t['threads']} threads, {t_gflops:.0f} GFLOP/s, "
      f"{100 * t_gflops / peak['gflops']:.0f}% of the peak), ratio {s['tokens_per_s'] / t['tokens_per_s']:.2f}x "
      f"(the peak bounds the ratio at {peak['gflops'] / t_gflops:.2f}x, "
      f"the {peak['fma_gflops']:.0f} GFLOP/s FMA ceiling at {peak['fma_gflops'] / t_gflops:.2f}x)")
PY
done
