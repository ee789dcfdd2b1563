#!/usr/bin/env bash
# The attention kernels alone (causal softmax, forward and backward, the presets' shapes; the
# materialised and the blockwise kernel), sinklab against PyTorch's attention of the same Block
# (bench/torch_attention.py), same run; and the kernels at long T (bench/attention_kernel.cpp).
# usage: bench/attention_kernel.sh [BUILD_DIR] [REPEATS] [ROUNDS]
#   ROUNDS (default 3): sinklab, PyTorch with 1 thread and with 2 threads run in turn; each keeps
#   its best round. OPENBLAS_KERNEL=avx512 selects OpenBLAS's AVX-512 kernels for both engines
#   (bench/openblas_kernel.sh); the default keeps the environment's setting.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
repeats=${2:-20}
rounds=${3:-3}
source "$root/bench/openblas_kernel.sh"
echo "# $(openblas_setting); best of $rounds rounds"
runs=()
for ((r = 1; r <= rounds; r++)); do
  runs+=("$("$build/bench/attention_kernel" "$repeats")")
  runs+=("$(/usr/bin/python3 "$root/bench/torch_attention.py" "$repeats" --threads 1)")
  runs+=("$(/usr/bin/python3 "$root/bench/torch_attention.py" "$repeats" --threads 2)")
done
printf '%s\n' "${runs[@]}"
/usr/bin/python3 - "${runs[@]}" <<'PY'
import json, sys
rows = [json.loads(line) for a in sys.argv[1:] for line in a.splitlines() if line.strip()]
total = lambda r: r["forward_ms"] + r.get("backward_ms", 0.0)
for preset in dict.fromkeys(r["preset"] for r in rows):
    torch = [r for r in rows if r["preset"] == preset and r["engine"] == "pytorch"]
    t = min(torch, key=total) if torch else None
    for kernel in ("materialised", "blockwise"):
        ours = [r for r in rows if r["preset"] == preset and r.get("kernel") == kernel]
        if not ours:
            continue
        s = min(ours, key=total)
        line = (f"{preset} (B {s['B']}, {s['heads']} heads of {s['head_size']}, T {s['T']}), {kernel}: "
                f"forward {s['forward_ms']:.2f} ms ({s['forward_gflops']:.0f} GFLOP/s over the causal half)")
        if "backward_ms" in s:
            line += f" + backward {s['backward_ms']:.2f} ms ({s['backward_gflops']:.0f} GFLOP/s)"
        if t:
            line += (f"; pytorch ({t['threads']} threads) {t['forward_ms']:.2f} + {t['backward_ms']:.2f} ms, "
                     f"ratio {total(t) / total(s):.2f}x")
        print(line)
PY
