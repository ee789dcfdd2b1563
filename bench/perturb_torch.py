#!/usr/bin/python3
"""The over-mixing test the PyTorch way, for bench/perturb_bench.sh: the same windows and
substitutions as a `sinklab perturb --json` run, through a float32 eager GPT-2-style forward of the
same weights (bench/probe_torch.py's loader), batched as sinklab batches them (each window with its
substitutions), every block output and head output kept, then the same statistics: per layer the
mean and 90th percentile (torch.quantile) of ||h(x') - h(x)|| / ||h(x)|| over the positions after
each substitution, and of each head's output.

Usage: perturb_torch.py MODEL_DIR TEXT_FILE SINKLAB_JSON THREADS
The windows are rebuilt from TEXT_FILE as sinklab's byte tokenizer and natural windows take them
(docs/probe.md: evenly spread, BOS 256 first for a vocabulary of 257). Prints one JSON line: the
seconds of the forwards and statistics (model loading excluded) and the per-layer numbers.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from probe_torch import load_folder  # noqa: E402  (next to this file)


def windows_from(text_file, T, W, bos):
    ids = list(open(text_file, "rb").read())
    consumed = T if bos is not None else T + 1  # text tokens one window reads (its targets included)
    span = len(ids) - consumed
    out = []
    for n in range(W):
        offset = span * n // (W - 1) if W > 1 else 0
        text = ids[offset:offset + consumed]
        out.append(([bos] + text[:T - 1]) if bos is not None else text[:T])
    return torch.tensor(out, dtype=torch.long)


def forward(cfg, p, ids):
    """GPT-2 forward over ids [B, T]: each block's output and each layer's heads [B, T, NH, HS]."""
    B, T = ids.shape
    NH, HS = cfg["heads"], cfg["head_dim"]
    x = F.embedding(ids, p["embed.tokens"]) + p["embed.positions"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    blocks, heads = [], []
    for l in range(cfg["layers"]):
        pre = f"layers.{l}."
        h = F.layer_norm(x, (x.shape[-1],), p[pre + "attn_norm.weight"], p[pre + "attn_norm.bias"], cfg["norm_eps"])
        wqkv = torch.cat([p[pre + "attn.wq"], p[pre + "attn.wk"], p[pre + "attn.wv"]])
        bqkv = torch.cat([p[pre + "attn.bq"], p[pre + "attn.bk"], p[pre + "attn.bv"]])
        q, k, v = F.linear(h, wqkv, bqkv).view(B, T, 3 * NH, HS).transpose(1, 2).chunk(3, dim=1)
        A = torch.softmax((q @ k.transpose(-1, -2) / math.sqrt(HS)).masked_fill(~mask, float("-inf")), dim=-1)
        att = (A @ v).transpose(1, 2)  # [B, T, NH, HS]
        heads.append(att)
        x = x + F.linear(att.reshape(B, T, NH * HS), p[pre + "attn.wo"], p[pre + "attn.bo"])
        h = F.layer_norm(x, (x.shape[-1],), p[pre + "mlp_norm.weight"], p[pre + "mlp_norm.bias"], cfg["norm_eps"])
        x = x + F.linear(F.gelu(F.linear(h, p[pre + "mlp.w_up"], p[pre + "mlp.b_up"]), approximate="tanh"),
                         p[pre + "mlp.w_down"], p[pre + "mlp.b_down"])
        blocks.append(x)
    return blocks, heads


def summary(values):
    return {"mean": float(values.mean()), "p90": float(torch.quantile(values, 0.9))}


def main(argv):
    if len(argv) != 5:
        raise SystemExit(__doc__)
    folder, text_file, sinklab_json, threads = argv[1], argv[2], argv[3], int(argv[4])
    torch.set_num_threads(threads)
    cfg, p = load_folder(folder)
    run = json.load(open(sinklab_json))
    T = run["parameters"]["seq_len"]
    perturbations = run["models"][0]["perturbations"]
    W = max(q["window"] for q in perturbations) + 1
    bos = 256 if cfg["vocab_size"] == 257 else None
    windows = windows_from(text_file, T, W, bos)
    start = time.perf_counter()
    with torch.no_grad():
        # one batch per window: the clean window, then its substitutions
        residual = [[] for _ in range(cfg["layers"])]
        head_changes = [[] for _ in range(cfg["layers"])]
        for w in range(W):
            mine = [q for q in perturbations if q["window"] == w]
            batch = [windows[w]]
            for q in mine:
                x = windows[w].clone()
                x[q["position"] - 1:q["position"] - 1 + len(q["tokens"])] = torch.tensor(q["tokens"])
                batch.append(x)
            blocks, heads = forward(cfg, p, torch.stack(batch))
            for l in range(cfg["layers"]):
                for i, q in enumerate(mine, start=1):
                    after = q["position"] - 1 + len(q["tokens"])
                    clean, pert = blocks[l][0, after:], blocks[l][i, after:]
                    residual[l].append((pert - clean).norm(dim=-1) / clean.norm(dim=-1))
                    hc, hp = heads[l][0, after:], heads[l][i, after:]
                    head_changes[l].append(((hp - hc).norm(dim=-1) / hc.norm(dim=-1)).reshape(-1))
        out = {"residual": [summary(torch.cat(r)) for r in residual],
               "heads_pooled": [summary(torch.cat(h)) for h in head_changes]}
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "torch": torch.__version__, **out}))


if __name__ == "__main__":
    main(sys.argv)
