#!/usr/bin/python3
"""Independent numpy check of `sinklab analyze`'s diffusion numbers.

Usage: analyze_diffusion_check.py MAPS.json ANALYZE.json
MAPS.json: {"maps": [[layer (T, T) as nested lists] per sample]} (head-averaged attention captured by
the test from the same model and inputs). ANALYZE.json: the command's --json output.
s_k = mean over rows of (A^k)[:, 0] (faithful: all rows; corrected: rows 1..T-1), averaged over
samples; the baseline is the same number for U_T (U_ij = 1/(i+1), j <= i) by explicit matrix powers.
Exit 0 and "ok" when every s_k, baseline and excess agrees to 1e-9; 1 on a mismatch; 2 without numpy.
"""
import json
import sys

try:
    import numpy as np
except ImportError:
    print("analyze_diffusion_check: numpy is missing (apt-get install python3-numpy)")
    sys.exit(2)


def masses(a, k):
    p = np.linalg.matrix_power(a, k)
    return p[:, 0].mean(), p[1:, 0].mean()


def main():
    maps = json.load(open(sys.argv[1]))["maps"]
    result = json.load(open(sys.argv[2]))["analyses"]["diffusion"]
    powers = [1, 2, 4, 8, 16]
    samples = [[np.array(layer, dtype=np.float64) for layer in s] for s in maps]
    T = samples[0][0].shape[0]
    u = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
    bad = 0
    for layer in result["layers"]:
        l = layer["layer"]
        for variant, idx in (("faithful", 0), ("corrected", 1)):
            entries = layer[variant]["power_mass"]
            if [e["k"] for e in entries] != powers:
                print(f"layer {l} {variant}: powers {[e['k'] for e in entries]}, expected {powers}")
                bad += 1
                continue
            for e in entries:
                k = e["k"]
                want = np.mean([masses(s[l], k)[idx] for s in samples])
                base = masses(u, k)[idx]
                for name, expected in (("mass", want), ("baseline", base), ("excess", want - base)):
                    got = e[name]["mean"]
                    if abs(got - expected) > 1e-9:
                        print(f"layer {l} {variant} k={k} {name}: sinklab {got!r}, numpy {expected!r}")
                        bad += 1
    print("ok" if bad == 0 else f"{bad} mismatches")
    sys.exit(0 if bad == 0 else 1)


if __name__ == "__main__":
    main()
