#!/usr/bin/python3
"""Independent reference for src/analysis/diffusion.cpp (ANALYSIS.md section 7), by dense numpy
matrix powers instead of sinklab's matrix-vector iterations and closed forms.

Usage: analysis_diffusion.py INPUT OUTPUT
INPUT: one JSON header line {"tokens": T, "layers": L, "powers": [k, ...]} followed by L*T*T
little-endian float64 values, layer after layer, each matrix row-major (row = query).
OUTPUT: JSON {"layers": [{"power_mass": [...], "power_mass_from_row1": [...], "baseline": [...],
"excess": [...], "column_sums": [[...], ...], "depth_mass": x, "lazy_depth_mass": x}, ...]}.

A layer with weight above the diagonal is not causal (an encoder's bidirectional attention): its
baseline is uniform bidirectional attention 1 1^T / T, whose every power puts 1/T on token 0; both
row conventions average over all rows; and it also gets "stationary" (pi with pi A = pi, the left
eigenvector of eigenvalue 1 from numpy.linalg.eig, normalised to sum 1) and "second_modulus"
(|lambda_2|, the second largest eigenvalue modulus).
"""
import json
import sys

import numpy as np


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, "rb") as f:
        header = json.loads(f.readline())
        data = np.frombuffer(f.read(), dtype="<f8")
    T, L, powers = header["tokens"], header["layers"], header["powers"]
    mats = data.reshape(L, T, T)

    # Uniform causal attention U_ij = 1/i (1-indexed), j <= i.
    U = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
    baseline = [float(np.linalg.matrix_power(U, k)[:, 0].mean()) for k in powers]

    out = []
    P = np.eye(T)
    lazy = np.eye(T)
    for A in mats:
        P = A @ P
        lazy = 0.5 * (np.eye(T) + A) @ lazy
        causal = not np.triu(A, 1).any()
        powers_of_a = [np.linalg.matrix_power(A, k) for k in powers]
        mass = [float(Ak[:, 0].mean()) for Ak in powers_of_a]
        base = baseline if causal else [1.0 / T] * len(powers)
        layer = {
            "power_mass": mass,
            "power_mass_from_row1": [float((Ak[1:] if causal else Ak)[:, 0].mean()) for Ak in powers_of_a],
            "baseline": base,
            "excess": [m - b for m, b in zip(mass, base)],
            "column_sums": [Ak.sum(axis=0).tolist() for Ak in powers_of_a],
            "depth_mass": float(P[:, 0].mean()),
            "lazy_depth_mass": float(lazy[:, 0].mean()),
        }
        if not causal:
            values, vectors = np.linalg.eig(A.T)
            one = np.argmin(np.abs(values - 1.0))
            pi = np.real(vectors[:, one])
            layer["stationary"] = (pi / pi.sum()).tolist()
            layer["second_modulus"] = float(np.sort(np.abs(values))[::-1][1])
        out.append(layer)
    with open(dst, "w") as f:
        json.dump({"layers": out}, f)


if __name__ == "__main__":
    main()
