#!/usr/bin/env bash
# Training at long T: the tiny preset, batch 1, at T = 1024, 2048, 4096 and 16384 (or SEQ_LENS),
# sinklab (build/bench/train_throughput) against PyTorch 1.13's eager attention with the same model
# (bench/torch_train.py: scores, mask, softmax, weights times values) in the same run. Each process
# runs under /usr/bin/time -v: tokens/s and peak resident memory per engine, the ratio of the
# tokens/s, and how sinklab's memory grows with T (the blockwise kernel saves per-row statistics,
# never a T x T matrix, so the growth is linear in T).
# usage: bench/train_long.sh [BUILD_DIR] [STEPS] [SEQ_LENS...]
#   STEPS (default 3) timed steps after 1 warm-up step. PyTorch runs where T <= TORCH_MAX_T
#   (default 4096): beyond it its saved (B, NH, T, T) weights would not fit this machine's memory.
#   PyTorch runs with 2 intra-op threads (its fastest setting here, docs/performance.md).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
steps=${2:-3}
shift $(( $# > 2 ? 2 : $# ))
seq_lens=("$@")
[ ${#seq_lens[@]} -gt 0 ] || seq_lens=(1024 2048 4096 16384)
torch_max_t=${TORCH_MAX_T:-4096}
source "$root/bench/openblas_kernel.sh"
echo "# $(openblas_setting); tiny preset, batch 1, $steps steps after 1 warm-up; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs a command under /usr/bin/time -v; prints its JSON line with "peak_rss_mb" added.
measured() {
  "/usr/bin/time" -v "$@" > "$work/out.json" 2> "$work/time.txt" || { cat "$work/time.txt" >&2; return 1; }
  /usr/bin/python3 - "$work/out.json" "$work/time.txt" <<'PY'
import json, re, sys
j = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
j["peak_rss_mb"] = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(sys.argv[2]).read()).group(1)) / 1024
print(json.dumps(j))
PY
}

runs=()
for T in "${seq_lens[@]}"; do
  runs+=("$(measured "$build/bench/train_throughput" tiny "$steps" 1 "$T" 1)")
  echo "${runs[-1]}"
  if [ "$T" -le "$torch_max_t" ]; then
    runs+=("$(measured /usr/bin/python3 "$root/bench/torch_train.py" tiny "$steps" 1 --threads 2 --seq-len "$T" --batch 1)")
    echo "${runs[-1]}"
  fi
done
/usr/bin/python3 - "${runs[@]}" <<'PY'
import json, sys
runs = [json.loads(a) for a in sys.argv[1:]]
ours = {r["seq_len"]: r for r in runs if r["engine"] == "sinklab"}
torch = {r["seq_len"]: r for r in runs if r["engine"] == "pytorch"}
print(f"{'T':>6} {'sinklab tok/s':>14} {'RSS MB':>8} {'PyTorch tok/s':>14} {'RSS MB':>8} {'ratio':>7}")
for T, s in sorted(ours.items()):
    t = torch.get(T)
    tail = f"{t['tokens_per_s']:14.0f} {t['peak_rss_mb']:8.0f} {s['tokens_per_s'] / t['tokens_per_s']:6.2f}x" if t else f"{'-':>14} {'-':>8} {'-':>7}"
    print(f"{T:6d} {s['tokens_per_s']:14.0f} {s['peak_rss_mb']:8.0f} {tail}")
Ts = sorted(ours)
if len(Ts) > 1:
    # Memory per token of T between the shortest and each longer T: constant when the growth is linear.
    base = ours[Ts[0]]["peak_rss_mb"]
    print("sinklab's memory growth: " + ", ".join(
        f"T {Ts[0]} -> {T}: +{ours[T]['peak_rss_mb'] - base:.0f} MB ({1024 * (ours[T]['peak_rss_mb'] - base) / (T - Ts[0]):.0f} KB per token)"
        for T in Ts[1:]))
PY
