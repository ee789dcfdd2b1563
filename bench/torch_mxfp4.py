#!/usr/bin/python3
"""PyTorch peer of bench/mxfp4_matmul.cpp: an MXFP4 matrix decoded as openai/gpt-oss's weights.py
decodes it (E2M1 lookup table, low nibble first, torch.ldexp by scale - 127) then x @ W^T + b,
timed per call (decode + matmul) and with the matrix decoded beforehand (matmul only), float32.
usage: torch_mxfp4.py [REPEATS]"""
import json, sys, time
import torch

FP4 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])


def decode(blocks, scales):
    out = torch.empty(*blocks.shape[:-1], 32)
    out[..., 0::2] = FP4[(blocks & 0x0F).long()]
    out[..., 1::2] = FP4[(blocks >> 4).long()]
    return torch.ldexp(out, (scales.int() - 127).unsqueeze(-1)).reshape(blocks.shape[0], -1)


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(7)
    for name, rows, cols in (("gate_up", 5760, 2880), ("down", 2880, 2880)):
        blocks = torch.randint(0, 256, (rows, cols // 32, 16), generator=gen, dtype=torch.uint8)
        scales = torch.randint(118, 122, (rows, cols // 32), generator=gen).to(torch.uint8)
        bias = torch.randn(rows, generator=gen)
        decoded = decode(blocks, scales)
        for n in (1, 16, 128):
            x = torch.randn(n, cols, generator=gen)
            both = only = 1e30
            for _ in range(repeats):
                t0 = time.perf_counter()
                torch.addmm(bias, x, decode(blocks, scales).T)
                both = min(both, time.perf_counter() - t0)
                t0 = time.perf_counter()
                torch.addmm(bias, x, decoded.T)
                only = min(only, time.perf_counter() - t0)
            print(json.dumps({"engine": "pytorch", "torch": torch.__version__, "matrix": name, "tokens": n,
                              "threads": torch.get_num_threads(), "decode_matmul_ms": both * 1e3,
                              "matmul_ms": only * 1e3}))


if __name__ == "__main__":
    main()
