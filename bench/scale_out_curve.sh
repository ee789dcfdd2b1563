#!/usr/bin/env bash
# The long form of DistributedCli.TwoRanksTrainTheCurveOfOneProcess (docs/scale-out.md): the tiny
# preset as it is (d 128, 4 layers, T 256, B 16), STEPS steps on 1 process and on 2 ranks under
# mpirun with the same global batch, one thread each; prints the largest relative difference of
# the step losses and of the validation losses, and whether any step is equal bit for bit.
# Not a timing: it may run on a busy machine.
# usage: bench/scale_out_curve.sh [BUILD_DIR] [STEPS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
steps=${2:-100}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # containers run as root
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags=(--preset tiny --steps "$steps" --log-every 1 --eval-every 25 --threads 1 --quiet)
"$build/sinklab" train "${flags[@]}" --out "$out/one" >/dev/null
mpirun -np 2 --oversubscribe "$build/sinklab" train "${flags[@]}" --out "$out/two" >/dev/null
/usr/bin/python3 - "$out/one/train_log.jsonl" "$out/two/train_log.jsonl" <<'PY'
import json, sys
def read(path):
    steps, evals = {}, {}
    for line in open(path):
        j = json.loads(line)
        if "loss" in j: steps[j["step"]] = j["loss"]
        if "val_loss" in j: evals[j["step"]] = j["val_loss"]
    return steps, evals
(one_steps, one_evals), (two_steps, two_evals) = read(sys.argv[1]), read(sys.argv[2])
assert one_steps.keys() == two_steps.keys() and one_evals.keys() == two_evals.keys()
def worst(a, b):
    return max((abs(b[k] - a[k]) / abs(a[k]), k) for k in a)
rel, at = worst(one_steps, two_steps)
equal = sum(one_steps[k] == two_steps[k] for k in one_steps)
vrel, vat = worst(one_evals, two_evals)
print(f"tiny preset, {len(one_steps)} steps, 1 process vs 2 ranks (1 thread each):")
print(f"  step losses: largest relative difference {rel:.2e} (step {at}); {equal} of {len(one_steps)} steps equal bit for bit")
print(f"  validation losses ({len(one_evals)} evaluations): largest relative difference {vrel:.2e} (step {vat})")
print(f"  first and last step loss: {one_steps[min(one_steps)]:.4f} -> {one_steps[max(one_steps)]:.4f}")
print("  within 1e-5 relative at every step" if rel <= 1e-5 else "  NOT within 1e-5 relative")
sys.exit(0 if rel <= 1e-5 else 1)
PY
