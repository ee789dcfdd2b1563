#!/usr/bin/env bash
# Constant memory and speed while streaming: TOKENS (default 1,000,000) tokens of the whole default
# corpus through the tiny preset in the llama style (RoPE, so that sink:4+252 attends over 257
# positions; the tiny preset's own learned positions stop at 256) with sink:4+252, a sample every
# 10,000 tokens. Checks, from the samples `sinklab stream` writes:
#   - resident memory: the last sample within 1 MiB of the one at 10K tokens;
#   - speed: tokens/s of the last tenth of the samples within 10% of the first tenth's.
# The model is initialised, not trained (steps 0): speed and memory do not depend on the weights.
# usage: bench/stream_memory.sh [BUILD_DIR] [TOKENS] [THREADS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
tokens=${2:-1000000}
threads=${3:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/sinklab" train --preset tiny --style llama --steps 0 --out "$work/tiny" --threads "$threads" >/dev/null
"$build/sinklab" stream --model "$work/tiny" --data "$root/data/sotu" --policy sink:4+252 --tokens "$tokens" \
  --every 10000 --threads "$threads" --quiet --json "$work/stream.json" | tail -n 4
/usr/bin/python3 - "$work/stream.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))["policies"][0]
samples = run["samples"]
mib = 1 << 20
rss = [s["rss_bytes"] for s in samples]
at_10k = next(s for s in samples if s["tokens"] >= 10000)["rss_bytes"]
tenth = max(1, len(samples) // 10)
first = sum(s["tokens_per_s"] for s in samples[:tenth]) / tenth
last = sum(s["tokens_per_s"] for s in samples[-tenth:]) / tenth
print(f"{run['policy']}: {run['summary']['tokens']} tokens in {run['summary']['seconds']:.0f} s "
      f"({run['summary']['tokens_per_s']:.0f} tokens/s), KV cache {run['summary']['cache_bytes']} bytes, "
      f"ppl {run['summary']['ppl']:.3f}")
print(f"resident memory: {at_10k / mib:.2f} MiB at 10K tokens, {rss[-1] / mib:.2f} MiB at the end "
      f"(max {max(rss) / mib:.2f}), difference {(rss[-1] - at_10k) / mib:+.3f} MiB: "
      f"{'PASS' if abs(rss[-1] - at_10k) <= mib else 'FAIL'} (within 1 MiB)")
print(f"tokens/s: first tenth {first:.0f}, last tenth {last:.0f}, ratio {last / first:.3f}: "
      f"{'PASS' if abs(last / first - 1) <= 0.10 else 'FAIL'} (within 10%)")
PY
