#!/usr/bin/python3
"""Causal softmax attention alone, forward and backward, in PyTorch (Debian's python3-torch), at the
shapes the presets train: the attention of bench/torch_train.py's Block, from the fused qkv
activations (B, T, 3 C) to the heads' output (B, T, C), and back. For bench/attention_kernel.sh.
Prints one JSON line per shape.

usage: torch_attention.py REPEATS [--threads N]
"""
import argparse, json, math, time

import torch

SHAPES = [("tiny", 16, 4, 32, 256), ("small", 8, 6, 64, 256)]


def attention(qkv, heads, mask):
    B, T, C3 = qkv.shape
    C = C3 // 3
    q, k, v = qkv.split(C, dim=2)
    q, k, v = (t.view(B, T, heads, C // heads).transpose(1, 2) for t in (q, k, v))
    att = (q @ k.transpose(-2, -1)) / math.sqrt(C // heads)
    att = att.masked_fill(mask, float("-inf")).softmax(dim=-1)
    return (att @ v).transpose(1, 2).reshape(B, T, C)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("repeats", type=int)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(7)
    for preset, B, NH, HS, T in SHAPES:
        qkv = torch.randn(B, T, 3 * NH * HS, requires_grad=True)
        dout = torch.randn(B, T, NH * HS)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        fwd = bwd = float("inf")
        for _ in range(a.repeats):
            qkv.grad = None
            t0 = time.perf_counter()
            out = attention(qkv, NH, mask)
            t1 = time.perf_counter()
            out.backward(dout)
            t2 = time.perf_counter()
            fwd, bwd = min(fwd, t1 - t0), min(bwd, t2 - t1)
        print(json.dumps({"engine": "pytorch", "torch": torch.__version__, "preset": preset, "threads": a.threads,
                          "forward_ms": fwd * 1e3, "backward_ms": bwd * 1e3}))


if __name__ == "__main__":
    main()
