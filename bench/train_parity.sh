#!/usr/bin/env bash
# Validation loss parity: `sinklab train --preset tiny --steps 300` against the same model trained
# by PyTorch on the same data with the same schedule (issue: within 0.05 nats).
# usage: bench/train_parity.sh [BUILD_DIR] [STEPS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
steps=${2:-300}
out=$(mktemp -d)
"$build/sinklab" train --preset tiny --steps "$steps" --eval-every 0 --quiet --out "$out/run" >/dev/null
s=$(tail -n 1 "$out/run/train_log.jsonl")
t=$(/usr/bin/python3 "$root/bench/torch_train.py" tiny "$steps" 0 --parity)
echo "sinklab: $s"
echo "pytorch: $t"
/usr/bin/python3 - "$s" "$t" <<'PY'
import json, sys
s, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
d = s["val_loss"] - t["val_loss"]
print(f"val_loss after {s['step']} steps: sinklab {s['val_loss']:.4f}, pytorch {t['val_loss']:.4f}, "
      f"difference {d:+.4f} nats ({'within' if abs(d) <= 0.05 else 'OUTSIDE'} 0.05)")
sys.exit(0 if abs(d) <= 0.05 else 1)
PY
rm -rf "$out"
