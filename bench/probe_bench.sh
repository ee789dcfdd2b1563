#!/usr/bin/env bash
# The probe against PyTorch, same machine, same run, same weights, same input: a GPT-2-124M-shaped
# model (random weights) probed at T = 1024 on one sample of natural text, all metrics.
#   sinklab: bench/probe_bench run (the model built in memory, run_probe: blockwise attention, no
#            T x T map, no LM head since no loss is asked for)
#   pytorch: bench/probe_torch.py (the same weights read from the model folder, a causal-LM forward
#            with every layer's attention maps, hidden states, q, k, v captured, the metrics from them)
# Each engine runs REPEATS times in its own processes, alternating; the best time and the largest
# peak RSS (getrusage, the whole process) of each are compared. Also prints `sinklab probe` on the
# model folder under /usr/bin/time (model loading included).
# usage: bench/probe_bench.sh [BUILD_DIR] [THREADS] [REPEATS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
threads=${2:-2}
repeats=${3:-3}
T=1024
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(set +o pipefail; cat "$root"/data/sotu/*.txt | head -c 100000) > "$work/text.txt"  # cat stops on SIGPIPE
"$build/bench/probe_bench" model "$work/gpt2-124m" gpt2-124m
echo "# GPT-2-124M shape, T $T, 1 sample, $threads threads, OpenBLAS core type ${OPENBLAS_CORETYPE:-auto}," \
     "$(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
for i in $(seq "$repeats"); do
  "$build/bench/probe_bench" run gpt2-124m "$work/text.txt" $T "$threads" > "$work/sinklab_$i.json"
  /usr/bin/python3 "$root/bench/probe_torch.py" "$work/gpt2-124m" "$work/text.txt" $T "$threads" > "$work/torch_$i.json"
done
/usr/bin/time -f "%e %M" -o "$work/cli_time" "$build/sinklab" probe --model "$work/gpt2-124m" \
  --input "natural:$work/text.txt" --samples 1 --seq-len $T --threads "$threads" --quiet > /dev/null
/usr/bin/python3 - "$work" "$repeats" <<'PY'
import json, sys
work, repeats = sys.argv[1], int(sys.argv[2])
load = lambda name: [json.load(open(f"{work}/{name}_{i}.json")) for i in range(1, repeats + 1)]
s, t = load("sinklab"), load("torch")
s_time, t_time = min(r["seconds"] for r in s), min(r["seconds"] for r in t)
s_rss, t_rss = max(r["peak_rss_mb"] for r in s), max(r["peak_rss_mb"] for r in t)
runs = lambda rs: ", ".join("%.2f" % r["seconds"] for r in rs)
print(f"sinklab: {s_time:.2f} s (runs {runs(s)}), peak RSS {s_rss:.0f} MB, attention path {s[0]['attention_path']}")
print(f"pytorch: {t_time:.2f} s (runs {runs(t)}), peak RSS {t_rss:.0f} MB, torch {t[0]['torch']}")
pairs = ", ".join("%.2f" % (b["seconds"] / a["seconds"]) for a, b in zip(s, t))  # runs back to back
print(f"ratio: sinklab is {t_time / s_time:.2f}x faster (run by run: {pairs}), with {s_rss / t_rss:.2f} of the peak RSS")
# the same numbers from both engines (float32 both; the order of sums differs)
sm, tm = s[0]["metrics"], t[0]["metrics"]
def worst(a, b):
    if isinstance(a, list):
        return max(worst(x, y) for x, y in zip(a, b))
    return abs(a - b)
checks = {"alpha_1": worst(sm["alpha_1"], tm["alpha_1"]), "sink_k": worst(sm["sink_k"], tm["sink_k"]),
          "entropy": worst(sm["entropy"], tm["entropy"]),
          "hidden_norm_ratio": worst(sm["hidden_norm_ratio"], tm["hidden_norm_ratio"]),
          "value_norm_ratio": worst(sm["value_norm_ratio"], tm["value_norm_ratio"]),
          "cos_query_other_keys": worst(sm["cos_query_other_keys"], tm["cos_query_other_keys"]),
          "massive top |h|": worst([abs(l["top"][0]["value"]) for l in sm["massive_activations"]["layers"]],
                                   tm["massive_top"])}
print("largest differences: " + ", ".join(f"{k} {v:.1e}" for k, v in checks.items()))
wall, kb = open(f"{work}/cli_time").read().split()
print(f"sinklab probe (CLI, model loading included): {wall} s wall, peak RSS {int(kb) / 1024:.0f} MB")
PY
