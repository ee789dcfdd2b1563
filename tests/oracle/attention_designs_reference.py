#!/usr/bin/python3
"""PyTorch reference of sinklab's attention designs, for tests/attention/test_attention_oracle.cpp.

Usage: /usr/bin/python3 attention_designs_reference.py CASE_DIR

Each design is written from its published formula (research/variants.md b4, with the source named
at each branch), not from the C++: the kv/k slot as a key/value column concatenated before the
tokens (Gu et al., lit_gpt/model_kv_bias.py), softmax1 as Miller's e^x / (1 + sum e^x), the gpt-oss
sink as a logit column appended to the masked scores and dropped after the softmax, sigmoid / elu
similarities and identity kernels masked multiplicatively and normalised as in Gu et al.'s
lit_gpt/model_attn_{sim,kernel}.py, softpick verbatim from zaydzuhri/softpick-attention, the output
gate as in qiuzh20/gated_attention; positional biases as ALiBi's get_slopes (ofirpress/
attention_with_linear_biases) with the distance form -m |i - j|, and T5's relative buckets as Hugging
Face's T5Attention._relative_position_bucket computes them (bidirectional=False) over a learned
(buckets, NH) table; logit soft-capping as Gemma 2 (c tanh(s / c) on the scaled scores, before the
bias and the mask). Gradients come from autograd; everything is float64, so the comparison
measures sinklab's float32 error alone.

The sink interventions of issue 20 (docs/perturb.md) are two optional case keys: "hidden_first" K
(mask-first:K: keys j < K hidden from every query i >= K, a mask) and "first_key_factor" F
(scale-first:F: the first key's f(s) multiplied by F in every row that sees it, before any
normalisation; for the softmax family that is log F added to its score). "forward_only" cases
have no gradients.

CASE_DIR holds (written by the C++ test):
  cases.json  {"cases": [{"name", "design", "B", "T", "NH", "NKV", "HS", "window", "prefix",
               "scale", "softcap", "position_bias": "none" | "alibi" | "relative",
               optional "hidden_first", "first_key_factor", "forward_only",
               "dout": {"offset", "numel"}, "inputs": [{"name", "shape", "offset", "numel"}]}]}
              inputs: "qkv" (B, T, (NH + 2 NKV) * HS), then the design's parameters ("slot_k",
              "slot_v", "slot_score", "sigmoid_bias", "value_bias"), then "relative_table"
              (buckets, NH) for relative positions, then "gate" for gated designs; "dout" (B, T, NH * HS).
  inputs.bin  float32 little-endian, the tensors at their offsets.
This script writes into the same folder:
  reference.json  {"dtype": "float64", "sections": [[name, count], ...]}
  reference.bin   float64 little-endian, per case "<case>/out" (B, T, NH * HS), "<case>/weights"
                  (B, NH, T, T), "<case>/slot_weights" (B, NH, T) for designs with a slot column,
                  and "<case>/d<input>" for every input: d sum(out * dout) / d input.
"""
import json
import math
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # a declared test dependency: scripts/setup.sh installs python3-torch
    print(f"attention_designs_reference.py: cannot import {e.name} ({e}); install python3-torch and python3-numpy "
          "(scripts/setup.sh)", file=sys.stderr)
    sys.exit(2)

DTYPE = torch.float64
SOFTMAX_FAMILY = {"softmax", "gated", "gated_headwise", "v_bias", "v_bias_shared"}
KV_SLOTS = {"kv_bias", "kv_bias_shared", "k_bias", "k_bias_shared"}


def visible(T, window, prefix, hidden_first=0, causal=True, key_lengths=None):
    # causal; prefix LM: the first `prefix` keys are visible to every query; window w: j > i - w;
    # mask-first:K: keys j < K hidden from the queries i >= K.
    # Not causal (an encoder): every key. key_lengths (B): keys j >= the sequence's length are
    # padding, seen by no query, as Hugging Face's attention mask (B, 1, 1, T) hides them.
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    mask = (j <= i) | (j < prefix) if causal else torch.ones(T, T, dtype=torch.bool)
    if window > 0:
        mask &= j > i - window
    if hidden_first > 0:
        mask &= ~((j < hidden_first) & (i >= hidden_first))
    if key_lengths is not None:
        keys = torch.arange(T)[None, :] < torch.tensor(key_lengths)[:, None]  # (B, T)
        mask = mask[None, None] & keys[:, None, None, :]                       # (B, 1, T, T)
    return mask


RELATIVE_BUCKETS, RELATIVE_MAX_DISTANCE = 32, 128


def alibi_slopes(n):
    # ofirpress/attention_with_linear_biases, models get_slopes
    def power_of_2(n):
        start = 2 ** (-2 ** -(math.log2(n) - 3))
        return [start * start ** i for i in range(n)]
    if math.log2(n).is_integer():
        return power_of_2(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_2(closest) + alibi_slopes(2 * closest)[0::2][:n - closest]


def alibi_bias(NH, T):
    distance = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).abs().to(DTYPE)
    return -torch.tensor(alibi_slopes(NH), dtype=DTYPE)[:, None, None] * distance  # (NH, T, T)


def relative_position_bucket(relative_position, num_buckets=RELATIVE_BUCKETS, max_distance=RELATIVE_MAX_DISTANCE):
    # Hugging Face T5Attention._relative_position_bucket, bidirectional=False
    relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    if_large = max_exact + (torch.log(relative_position.float() / max_exact) / math.log(max_distance / max_exact)
                            * (num_buckets - max_exact)).to(torch.long)
    if_large = torch.min(if_large, torch.full_like(if_large, num_buckets - 1))
    return torch.where(is_small, relative_position, if_large)


def relative_bias(table, T):
    # table (buckets, NH); relative position = key - query
    bucket = relative_position_bucket(torch.arange(T)[None, :] - torch.arange(T)[:, None])
    return table[bucket].permute(2, 0, 1)  # (NH, T, T)


def position_bias(c, x):
    # (NH, T, T) added to the scores of the token columns, or None: given by the caller (the engine
    # reference computes it once per forward), or from the case's "position_bias"
    if "score_bias" in x:
        return x["score_bias"]
    kind = c.get("position_bias", "none")
    if kind == "alibi":
        return alibi_bias(c["NH"], c["T"])
    if kind == "relative":
        return relative_bias(x["relative_table"], c["T"])
    return None


def first_key_factors(vis, factor):
    # scale-first:F: multipliers of f(s) in vis's shape, F on key 0 in the rows that see it, 1 elsewhere
    m = torch.ones(vis.shape, dtype=DTYPE)
    m[..., 0] = torch.where(vis[..., 0], torch.tensor(factor, dtype=DTYPE), torch.tensor(1.0, dtype=DTYPE))
    return m


def per_head(p, NH):
    # (NH, ...) per-head parameter, or one shared (1, ...) row broadcast to every head
    return p.expand(NH, *p.shape[1:]) if p.shape[0] == 1 else p


def softpick(x, dim=-1, eps=1e-8, factors=None):
    # zaydzuhri/softpick-attention naive_softpick_attn.py: relu(exp(x)-1) / sum(abs(exp(x)-1)),
    # numerically stable version; `factors` multiply each term of both sums (scale-first)
    x_m = torch.max(x, dim=dim, keepdim=True).values
    x_m_e_m = torch.exp(-x_m)
    x_e_1 = torch.exp(x - x_m) - x_m_e_m
    r_x_e_1 = F.relu(x_e_1)
    a_x_e_1 = torch.where(x.isfinite(), torch.abs(x_e_1), torch.zeros_like(x_e_1))
    if factors is not None:
        r_x_e_1, a_x_e_1 = r_x_e_1 * factors, a_x_e_1 * factors
    return r_x_e_1 / (torch.sum(a_x_e_1, dim=dim, keepdim=True) + eps)


def attention(c, x):
    """Returns out (B, T, NH*HS), weights (B, NH, T, T), slot weights (B, NH, T) or None."""
    design = c["design"]
    B, T, NH, NKV, HS = c["B"], c["T"], c["NH"], c["NKV"], c["HS"]
    scale = c["scale"]
    qkv = x["qkv"].view(B, T, NH + 2 * NKV, HS)
    q = qkv[:, :, :NH].transpose(1, 2)                               # (B, NH, T, HS)
    k = qkv[:, :, NH:NH + NKV].transpose(1, 2).repeat_interleave(NH // NKV, dim=1)
    v = qkv[:, :, NH + NKV:].transpose(1, 2).repeat_interleave(NH // NKV, dim=1)
    vis = visible(T, c["window"], c["prefix"], c.get("hidden_first", 0), c.get("causal", True),
                  c.get("key_lengths"))                              # (T, T) or (B, 1, T, T)
    fm = first_key_factors(vis, c.get("first_key_factor", 1.0))     # multipliers of f(s), vis's shape
    bias = position_bias(c, x)
    scores = q @ k.transpose(-1, -2) * scale
    softcap = c.get("softcap", 0.0)
    if softcap > 0:  # Gemma 2: logit soft-capping of the scaled scores
        scores = softcap * torch.tanh(scores / softcap)
    if bias is not None:
        scores = scores + bias                                       # (NH, T, T) broadcast over B
    # e^s times the factor is e^(s + log factor): the softmax family reads `masked`, the rest `vis * fm`
    masked = scores.masked_fill(~vis, float("-inf")) + fm.log()
    vis = vis * fm
    slot_w = None
    if design in SOFTMAX_FAMILY:
        w = torch.softmax(masked, dim=-1)
        out = w @ v
        if design.startswith("v_bias"):  # Gu et al.: y = softmax(QK^T/sqrt(d)) V + v_bias
            out = out + per_head(x["value_bias"], NH)[None, :, None, :]
    elif design in KV_SLOTS:
        # Gu et al. model_kv_bias.py: k*, v* concatenated as key/value column 0 (after RoPE), seen
        # by every query; v* = 0 for the K-bias designs
        ks = per_head(x["slot_k"], NH)[None, :, None, :].expand(B, NH, 1, HS)
        vs = per_head(x["slot_v"], NH)[None, :, None, :].expand(B, NH, 1, HS) if "slot_v" in x else \
            torch.zeros(B, NH, 1, HS, dtype=DTYPE)
        slot_scores = q @ ks.transpose(-1, -2) * scale               # (B, NH, T, 1)
        p = torch.softmax(torch.cat([slot_scores, masked], dim=-1), dim=-1)
        out = p @ torch.cat([vs, v], dim=2)
        slot_w, w = p[..., 0], p[..., 1:]
    elif design == "softmax1":
        # Miller, "Attention Is Off By One": softmax_1(x)_i = e^x_i / (1 + sum_j e^x_j)
        e = torch.exp(masked)
        denom = 1.0 + e.sum(-1, keepdim=True)
        w = e / denom
        slot_w = (1.0 / denom)[..., 0]
        out = w @ v
    elif design == "score_bias":
        # openai/gpt-oss sdpa(): P = softmax([QK^T * scale + mask, s_h]), O = P[:, :-1] V
        sinks = x["slot_score"].view(1, NH, 1, 1).expand(B, NH, T, 1)
        p = torch.softmax(torch.cat([masked, sinks], dim=-1), dim=-1)
        w, slot_w = p[..., :-1], p[..., -1]
        out = w @ v
    elif design.startswith("sigmoid"):
        if design == "sigmoid_norm":  # Gu et al. model_attn_sim.py, attention_normalize
            w = torch.sigmoid(scores) * vis
            w = w / (w.sum(-1, keepdim=True) + 1e-8)
        else:  # Apple: sigmoid(QK^T/sqrt(d) + b), b fixed or learnable
            if "sigmoid_bias" in x:
                b = per_head(x["sigmoid_bias"].view(-1, 1), NH).view(1, NH, 1, 1)
            else:
                b = float(design.split(":")[1]) if ":" in design else 0.0
            w = torch.sigmoid(scores + b) * vis
        out = w @ v
    elif design in ("elu1", "elu1_norm"):  # Gu et al. model_attn_sim.py: elu(qk^T/sqrt(d)) + 1
        w = (F.elu(scores) + 1.0) * vis
        if design == "elu1_norm":
            w = w / (w.sum(-1, keepdim=True) + 1e-8)
        out = w @ v
    elif design in ("identity", "identity_norm"):  # Gu et al. model_attn_kernel.py, linear kernel
        w = scores * vis
        if design == "identity_norm":
            w = w / w.sum(dim=-1, keepdim=True).abs().clamp(min=1)
        out = w @ v
    elif design == "linear_elu":  # Gu et al. model_attn_kernel.py, elu kernel: phi after RoPE
        qf, kf = F.elu(q) + 1.0, F.elu(k) + 1.0
        w = (qf @ kf.transpose(-1, -2) * scale) * vis
        w = w / (w.sum(dim=-1, keepdim=True) + 1e-8)
        out = w @ v
    elif design == "softpick":
        w = softpick(scores.masked_fill(vis == 0, float("-inf")), dim=-1, factors=fm)
        out = w @ v
    else:
        raise SystemExit(f"attention_designs_reference.py: no reference for design '{design}'")
    out = out.transpose(1, 2)                                        # (B, T, NH, HS)
    if design == "gated":  # qiuzh20/gated_attention: Y' = SDPA(Q, K, V) * sigmoid(X W), elementwise
        out = out * torch.sigmoid(x["gate"].view(B, T, NH, HS))
    elif design == "gated_headwise":  # one gate per head
        out = out * torch.sigmoid(x["gate"].view(B, T, NH, 1))
    return out.reshape(B, T, NH * HS), w, slot_w


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    folder = sys.argv[1]
    with open(os.path.join(folder, "cases.json")) as f:
        cases = json.load(f)["cases"]
    flat = np.fromfile(os.path.join(folder, "inputs.bin"), dtype="<f4").astype(np.float64)

    def tensor(entry, shape=None):
        t = torch.tensor(flat[entry["offset"]:entry["offset"] + entry["numel"]], dtype=DTYPE)
        return t.reshape(shape) if shape is not None else t

    sections, values = [], []
    for c in cases:
        x = {i["name"]: tensor(i, i["shape"]).requires_grad_(True) for i in c["inputs"]}
        out, w, slot_w = attention(c, x)
        results = [("out", out), ("weights", w)]
        if slot_w is not None:
            results.append(("slot_weights", slot_w))
        if not c.get("forward_only", False):
            (out * tensor(c["dout"]).view_as(out)).sum().backward()
            results += [("d" + i["name"], x[i["name"]].grad) for i in c["inputs"]]
        for name, t in results:
            arr = t.detach().numpy().astype("<f8").ravel()
            sections.append([f"{c['name']}/{name}", int(arr.size)])
            values.append(arr)
    np.concatenate(values).tofile(os.path.join(folder, "reference.bin"))
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump({"dtype": "float64", "sections": sections}, f)


if __name__ == "__main__":
    main()
