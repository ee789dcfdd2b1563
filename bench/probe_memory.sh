#!/usr/bin/env bash
# The probe at long sequences, memory and speed: `sinklab probe` on a d 768, 12-layer, 12-head model
# (RoPE, byte vocabulary, random weights, made for max_seq_len 64: its positions extrapolate) at
# T = 32768, under /usr/bin/time -v, against the machine's sgemm peak measured in the same run
# (build/bench/sgemm_peak). The blockwise kernel stores no T x T matrix, so the peak resident memory
# grows linearly in T (the issue's bound: 4 GB). One sample, all metrics; model loading included in
# the wall time, not in the probe's seconds.
# The model's matrix work, forward only (the probe asks for no loss, so no LM head):
#   per token and layer 2 (4 d^2 + 3 d d_ff) for q, k, v, o and the SwiGLU MLP, and per layer
#   2 d T (T + 1) for the causal halves of Q K^T and W V; at T = 32768 about 25.4 TFLOP.
# usage: bench/probe_memory.sh [BUILD_DIR] [SEQ_LEN] [THREADS] [SHAPE]
#   SHAPE: long-768 (default) or long-768-kv_bias (the kv_bias design: a slot every row sees)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
T=${2:-32768}
threads=${3:-0}
shape=${4:-long-768}
source "$root/bench/openblas_kernel.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/bench/probe_bench" model "$work/model" "$shape"
echo "# $shape: d 768, 12 layers, 12 heads, RoPE made for 64 positions, T $T, 1 sample, threads ${threads}" \
     "(0 = all); $(openblas_setting); load $(cut -d' ' -f1-3 /proc/loadavg)"
peak=$(OMP_NUM_THREADS=$([ "$threads" = 0 ] && nproc || echo "$threads") "$build/bench/sgemm_peak")
echo "$peak"
/usr/bin/time -v "$build/sinklab" probe --model "$work/model" --input random --samples 1 --seq-len "$T" \
  --threads "$threads" --quiet --json "$work/probe.json" > "$work/table.txt" 2> "$work/time.txt"
grep -E "Maximum resident set size|Elapsed \(wall clock\)" "$work/time.txt"
/usr/bin/python3 - "$work/probe.json" "$work/model/config.json" "$peak" "$work/time.txt" <<'PY'
import json, re, sys
j = json.load(open(sys.argv[1]))
c = json.load(open(sys.argv[2]))["sinklab"]
peak = json.loads(sys.argv[3])
rss_gb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(sys.argv[4]).read()).group(1)) / 2**20
T, d, ff, L = j["seq_len"], c["d_model"], c["d_ff"], c["layers"]
flops = L * (T * 2 * (4 * d * d + 3 * d * ff) + 2 * d * T * (T + 1))
gflops = flops / j["seconds"] / 1e9
print(f"attention kernel {j['attention_path']}, beyond max_seq_len {j['beyond_max_seq_len']}; {j['seconds']:.1f} s in "
      f"the probe for {flops / 1e12:.1f} TFLOP of matrix work: {gflops:.0f} GFLOP/s, "
      f"{100 * gflops / peak['gflops']:.0f}% of the {peak['gflops']:.0f} GFLOP/s sgemm peak measured in this run "
      f"(at the peak it would take {flops / peak['gflops'] / 1e9:.0f} s); peak RSS {rss_gb:.2f} GB")
print(f"Sink_1 {j['sink_k'][0]:.1f}%, alpha_1 of layer 0 head 0 {j['alpha_1'][0][0]:.3g}")
PY
