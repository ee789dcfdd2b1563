#!/usr/bin/env bash
# The over-mixing test against PyTorch, same machine, same run, same weights, same substitutions:
# `sinklab perturb --random 200 --seq-len 64` (the issue's speed target: under 20 s on the demo
# model) on a demo-shaped model (d-model 64, 4 layers, 2 heads, byte vocabulary with BOS; the
# initialised weights, or MODEL when given), and bench/perturb_torch.py on the substitutions sinklab
# drew (its JSON lists them), float32 eager, batched per window as sinklab batches.
# Each engine runs REPEATS times, alternating; the best in-process time of each is compared, and the
# CLI's wall time (model loading included) is printed beside it.
# usage: bench/perturb_bench.sh [BUILD_DIR] [THREADS] [REPEATS] [MODEL]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
threads=${2:-2}
repeats=${3:-3}
model=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(set +o pipefail; cat "$root"/data/sotu/*.txt | head -c 100000) > "$work/text.txt"  # cat stops on SIGPIPE
if [ -z "$model" ]; then
  "$build/sinklab" train --preset tiny --d-model 64 --heads 2 --bos --steps 0 --out "$work/run" --quiet \
    --data "$work/text.txt" > /dev/null
  model="$work/run/checkpoint"
fi
echo "# perturb --random 200 --seq-len 64 on $model, $threads threads, OpenBLAS core type" \
     "${OPENBLAS_CORETYPE:-auto}, $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
for i in $(seq "$repeats"); do
  /usr/bin/time -f "%e" -o "$work/wall_$i" "$build/sinklab" perturb --model "$model" --random 200 --seq-len 64 \
    --data "$work/text.txt" --threads "$threads" --quiet --json "$work/sinklab_$i.json" > /dev/null
  /usr/bin/python3 "$root/bench/perturb_torch.py" "$model" "$work/text.txt" "$work/sinklab_$i.json" "$threads" \
    > "$work/torch_$i.json"
done
/usr/bin/python3 - "$work" "$repeats" <<'PY'
import json, sys
work, repeats = sys.argv[1], int(sys.argv[2])
s = [json.load(open(f"{work}/sinklab_{i}.json")) for i in range(1, repeats + 1)]
t = [json.load(open(f"{work}/torch_{i}.json")) for i in range(1, repeats + 1)]
wall = [float(open(f"{work}/wall_{i}").read()) for i in range(1, repeats + 1)]
s_times = [sum(r["seconds"] for r in run["models"][0]["runs"]) for run in s]
t_times = [r["seconds"] for r in t]
print(f"sinklab: {min(s_times):.3f} s (runs {', '.join('%.3f' % x for x in s_times)}); CLI wall, loading "
      f"included: {min(wall):.2f} s (runs {', '.join('%.2f' % x for x in wall)})")
print(f"pytorch: {min(t_times):.3f} s (runs {', '.join('%.3f' % x for x in t_times)}), torch {t[0]['torch']}")
pairs = ", ".join("%.2f" % (b / a) for a, b in zip(s_times, t_times))
print(f"ratio: sinklab is {min(t_times) / min(s_times):.2f}x faster (run by run: {pairs})")
mine = s[0]["models"][0]["runs"][0]
worst = max(max(abs(a["mean"] - b["mean"]), abs(a["p90"] - b["p90"]))
            for key in ("residual", "heads_pooled") for a, b in zip(mine[key], t[0][key]))
print(f"largest difference of the per-layer means and p90s (float32 both): {worst:.1e}")
PY
