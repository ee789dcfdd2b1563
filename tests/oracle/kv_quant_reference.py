#!/usr/bin/python3
"""NumPy reference of KIVI-layout KV quantization, for tests/ops/test_kv_quant.cpp.

Usage: /usr/bin/python3 kv_quant_reference.py CASE_DIR

Written from the layout's definition (docs/streaming.md, "KV quantization"; KIVI, Liu et al. 2024):
asymmetric quantization with b bits, codes 0 .. 2^b - 1, per group a minimum and a step
step = (max - min) / (2^b - 1) and code = round_half_even((x - min) / step) clipped to the range
(step 0: every code 0), all in float32. Keys: a group is up to 32 tokens of one channel; values:
32 consecutive channels of one token. int4 packs two codes per byte, the lower nibble first.

CASE_DIR/case.json {"bits", "tokens", "width"} and CASE_DIR/input.bin: float32 little-endian, the keys
(tokens, width) then the values (tokens, width). Writes CASE_DIR/reference.bin: key codes (tokens rows
of width * bits / 8 bytes), key minima (width, f32), key steps (width, f32), then per value row its
codes, its minima and its steps (ceil(width / 32) each, f32).
"""
import json
import os
import sys

import numpy as np

GROUP = 32


def quantize(x, lo, step, bits):
    top = np.float32(2 ** bits - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.rint((x - lo) / step)
    level = np.where(step > 0, level, np.float32(0))
    return np.clip(level, 0, top).astype(np.uint8)


def pack(codes, bits):
    if bits == 8:
        return codes.astype(np.uint8)
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)


def main():
    folder = sys.argv[1]
    with open(os.path.join(folder, "case.json")) as f:
        case = json.load(f)
    bits, tokens, width = case["bits"], case["tokens"], case["width"]
    data = np.fromfile(os.path.join(folder, "input.bin"), dtype="<f4")
    keys = data[: tokens * width].reshape(tokens, width)
    values = data[tokens * width:].reshape(tokens, width)
    levels = np.float32(2 ** bits - 1)
    out = []
    # keys: per channel over the group's tokens
    lo, hi = keys.min(axis=0), keys.max(axis=0)
    step = ((hi - lo) / levels).astype(np.float32)
    out.append(pack(quantize(keys, lo[None, :], step[None, :], bits), bits).tobytes())
    out.append(lo.astype("<f4").tobytes())
    out.append(step.astype("<f4").tobytes())
    # values: per token, groups of 32 channels
    for row in values:
        mins, steps, codes = [], [], []
        for c0 in range(0, width, GROUP):
            g = row[c0:c0 + GROUP]
            g_lo, g_hi = g.min(), g.max()
            g_step = np.float32((g_hi - g_lo) / levels)
            mins.append(g_lo)
            steps.append(g_step)
            codes.append(quantize(g, g_lo, g_step, bits))
        out.append(pack(np.concatenate(codes), bits).tobytes())
        out.append(np.array(mins, dtype="<f4").tobytes())
        out.append(np.array(steps, dtype="<f4").tobytes())
    with open(os.path.join(folder, "reference.bin"), "wb") as f:
        f.write(b"".join(out))


if __name__ == "__main__":
    main()
