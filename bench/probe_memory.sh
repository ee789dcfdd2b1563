#!/usr/bin/env bash
# The probe's memory at long sequences: `sinklab probe` on a d 768, 12-layer, 12-head model (RoPE,
# byte vocabulary, random weights) at T = 32768, under /usr/bin/time -v. The blockwise attention
# path stores no T x T matrix, so the peak resident memory grows linearly in T (the issue's bound:
# 4 GB). One sample, all metrics; model loading included.
# usage: bench/probe_memory.sh [BUILD_DIR] [SEQ_LEN] [THREADS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
T=${2:-32768}
threads=${3:-0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/bench/probe_bench" model "$work/long-768" long-768
echo "# d 768, 12 layers, 12 heads, RoPE, T $T, 1 sample, threads ${threads} (0 = all), $(nproc) cores"
/usr/bin/time -v "$build/sinklab" probe --model "$work/long-768" --input random --samples 1 --seq-len "$T" \
  --threads "$threads" --quiet --json "$work/probe.json" > "$work/table.txt" 2> "$work/time.txt"
grep -E "Maximum resident set size|Elapsed \(wall clock\)" "$work/time.txt"
/usr/bin/python3 - "$work/probe.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(f"attention path {j['attention_path']}, {j['seconds']:.0f} s in the probe; Sink_1 {j['sink_k'][0]:.1f}%, "
      f"alpha_1 of layer 0 head 0 {j['alpha_1'][0][0]:.3g}")
PY
