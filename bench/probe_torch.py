#!/usr/bin/python3
"""The probe's metrics the PyTorch way, for bench/probe_bench.sh: a causal-LM forward with every
layer's attention maps and hidden states captured (as Hugging Face's output_attentions /
output_hidden_states in eager float32, which Gu et al.'s eval_sink_open_source.py uses, plus the
queries, keys and values), then the same metrics as `sinklab probe` from those tensors.

Usage: probe_torch.py MODEL_DIR TEXT_FILE SEQ_LEN THREADS
MODEL_DIR is a sinklab model folder (config.json + model.safetensors, gpt2 style); the input is
the first SEQ_LEN bytes of TEXT_FILE as token ids, as `sinklab probe --input natural:TEXT_FILE
--samples 1` takes them with sinklab's byte tokenizer. Prints one JSON line: the seconds of the
forward and the metrics (model loading excluded), the peak RSS of the process (loading included),
and the metrics for a cross-check.
"""
import json
import math
import os
import resource
import struct
import sys
import time

import torch
import torch.nn.functional as F


def load_folder(folder):
    """The config and float32 tensors of a sinklab model folder, each read straight into its own
    tensor (no mapping of the file stays resident)."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)["sinklab"]
    if cfg["style"] != "gpt2" or cfg["attention"] != "softmax":
        raise SystemExit("probe_torch.py runs gpt2-style softmax models (bench/probe_bench model DIR gpt2-124m)")
    params = {}
    with open(os.path.join(folder, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if info["dtype"] != "F32":
                raise SystemExit(f"{name}: expected F32, got {info['dtype']}")
            tensor = torch.empty(info["shape"], dtype=torch.float32)
            f.seek(8 + n + info["data_offsets"][0])
            f.readinto(memoryview(tensor.numpy()).cast("B"))
            params[name] = tensor
    return cfg, params


def forward(cfg, p, ids):
    """GPT-2 forward over ids [1, T]; returns logits and the captured tensors."""
    T = ids.shape[1]
    NH, HS = cfg["heads"], cfg["head_dim"]
    x = F.embedding(ids, p["embed.tokens"]) + p["embed.positions"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    maps, hidden, queries, keys, values = [], [], [], [], []
    for l in range(cfg["layers"]):
        pre = f"layers.{l}."
        h = F.layer_norm(x, (x.shape[-1],), p[pre + "attn_norm.weight"], p[pre + "attn_norm.bias"], cfg["norm_eps"])
        wqkv = torch.cat([p[pre + "attn.wq"], p[pre + "attn.wk"], p[pre + "attn.wv"]])
        bqkv = torch.cat([p[pre + "attn.bq"], p[pre + "attn.bk"], p[pre + "attn.bv"]])
        q, k, v = F.linear(h, wqkv, bqkv).view(1, T, 3 * NH, HS).transpose(1, 2).chunk(3, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(HS)
        A = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        maps.append(A)
        queries.append(q)
        keys.append(k)
        values.append(v)
        att = (A @ v).transpose(1, 2).reshape(1, T, NH * HS)
        x = x + F.linear(att, p[pre + "attn.wo"], p[pre + "attn.bo"])
        h = F.layer_norm(x, (x.shape[-1],), p[pre + "mlp_norm.weight"], p[pre + "mlp_norm.bias"], cfg["norm_eps"])
        a = F.gelu(F.linear(h, p[pre + "mlp.w_up"], p[pre + "mlp.b_up"]), approximate="tanh")
        x = x + F.linear(a, p[pre + "mlp.w_down"], p[pre + "mlp.b_down"])
        hidden.append(x)
    x = F.layer_norm(x, (x.shape[-1],), p["final_norm.weight"], p["final_norm.bias"], cfg["norm_eps"])
    logits = F.linear(x, p["embed.tokens"] if cfg["tied_embeddings"] else p["lm_head"])
    return logits, maps, hidden, queries, keys, values


def first_to_rest(x):
    """x [heads, T, HS] -> [heads]: ||x_1|| / mean_{t>1} ||x_t||."""
    norms = x.norm(dim=-1)
    return norms[:, 0] / norms[:, 1:].mean(-1)


def metrics(maps, hidden, queries, keys, values, K=10, eps=0.3):
    """The probe's metrics from the captured tensors, one layer at a time (the maps are [1, H, T, T])."""
    T = maps[0].shape[-1]
    ratios = torch.arange(T, 0, -1, dtype=maps[0].dtype)[None, None, :]  # Gu et al.'s compute_attention_sink
    later = torch.ones(T, T, dtype=torch.bool).tril()
    later[:, 0] = False
    out = {k: [] for k in ("alpha_1", "entropy", "massive_top", "massive_median", "massive_count",
                           "hidden_norm_ratio", "key_norm_ratio", "value_norm_ratio", "cos_query_first_key",
                           "cos_query_other_keys")}
    above = torch.zeros(T)
    for A, h, q, k, v in zip(maps, hidden, queries, keys, values):
        importance = (A[0] / ratios).sum(dim=-2)  # [H, T]
        above += (importance > eps).float().sum(0)
        out["alpha_1"].append(importance[:, 0].tolist())
        out["entropy"].append((-torch.xlogy(A[0], A[0]).sum(-1).mean(-1)).tolist())
        magnitude = h[0].abs().flatten()
        median = magnitude.median()
        out["massive_top"].append(float(magnitude.max()))
        out["massive_median"].append(float(median))
        out["massive_count"].append(int((magnitude > torch.clamp(median * 1000, min=100)).sum()))
        norms = h[0].norm(dim=-1)
        out["hidden_norm_ratio"].append(float(norms[0] / norms[1:].mean()))
        out["key_norm_ratio"].append(first_to_rest(k[0]).tolist())
        out["value_norm_ratio"].append(first_to_rest(v[0]).tolist())
        cos = F.normalize(q[0], dim=-1) @ F.normalize(k[0], dim=-1).transpose(-1, -2)  # [H, T, T]
        out["cos_query_first_key"].append(cos[..., 0].mean(-1).tolist())
        out["cos_query_other_keys"].append(((cos * later).sum(-1)[:, 1:] / later.sum(-1)[1:]).mean(-1).tolist())
    heads = maps[0].shape[1]
    out["sink_k"] = (above[:K] / (len(maps) * heads) * 100).tolist()
    return out


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    folder, text_file, T, threads = argv[1], argv[2], int(argv[3]), int(argv[4])
    torch.set_num_threads(threads)
    cfg, params = load_folder(folder)
    with open(text_file, "rb") as f:
        ids = torch.tensor(list(f.read(T)), dtype=torch.long)[None]
    start = time.perf_counter()
    with torch.no_grad():
        logits, *captured = forward(cfg, params, ids)
        result = metrics(*captured)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"engine": "pytorch", "torch": torch.__version__, "threads": threads, "seq_len": T,
                      "seconds": seconds, "peak_rss_mb": peak_mb, "metrics": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
