#!/usr/bin/python3
"""PyTorch reference of sinklab's probe metrics, for tests/probe/test_probe_oracle.cpp.

Usage: /usr/bin/python3 probe_reference.py CASE_DIR [CASE_DIR ...]

Written from the definitions (DESIGN.md section 4, research/variants.md b1-b3), not from the C++.
The Sink metric is Gu et al.'s compute_attention_sink as their code writes it
(sail-sg/Attention-Sink: eval_sink_open_source.py):
    ratios = arange(T, 0, -1)[None, None, None, :]
    importance = (A / ratios).sum(dim=-2)
    metric = (importance > eps).float().mean(dim=(0, 1, 2))
on the attention maps stacked as [samples, layers, heads, T, T]. The other metrics are computed the
plain way, on whole tensors: entropies from the maps, massive activations with torch.median (the
lower middle value) per sample, norms averaged over samples before the ratio (Gu et al. App. C.3),
and cosines from the full (T, T) cosine matrix under the causal mask.

Each CASE_DIR holds case.json with "kind":
  "model":      a sinklab model as tests/oracle/oracle_case.h writes it (config, params table,
                params.bin, "B" samples of "T" tokens, optional "targets"), plus "positions" (K),
                "eps", "massive_absolute", "massive_relative". The forward below (float64,
                pre-norm, softmax attention, positions nope/learned/rope, GELU or SwiGLU MLP,
                grouped-query heads) captures the maps, the queries and keys after RoPE, the values
                and every block's output.
  "hf_fixture": "reference": a tests/fixtures/hf/<arch>/reference.safetensors written by Hugging
                Face transformers (eager attention); its "attentions" [L, H, T, T] and
                "layer_outputs" [L, T, D] are the captured tensors (one sample), plus "positions",
                "eps", "massive_absolute", "massive_relative".
It writes reference.json: {"alpha_k": [k][layer][head], "sink_k": [k] (percent),
"entropy": [layer][head], "massive": [{"median", "top": [[sample, position, dim, value]], "count"}],
"hidden_norm_ratio": [layer]} and, for models, "key_norm_ratio", "value_norm_ratio" [layer][kv head],
"cos_query_first_key", "cos_query_other_keys", "head_output_ratio" (the no-op reading) [layer][head]
and "loss" (with targets).

A model case may also list "interventions" (the probe's sink interventions, issue 20), each
{"name", "kind": "mask_first" with "count" K | "scale_first" with "factor" F | "replace_first" with
"id"}, written from their definitions (docs/definitions.md): mask-first:K removes keys 1..K from
the softmax of every query after them (queries 1..K keep their rows); scale-first:F multiplies the
first key's exp(score) by F before the row is normalised, in every row; replace-first:ID writes ID
at position 1 of every sample, the targets unchanged. For each, "interventions"[name] = {"loss",
"sink_k"} of the edited forward.
"""
import json
import math
import os
import struct
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # a declared test dependency: scripts/setup.sh installs python3-torch
    print(f"probe_reference.py: cannot import {e.name} ({e}); install python3-torch and python3-numpy "
          "(scripts/setup.sh)", file=sys.stderr)
    sys.exit(2)

DTYPE = torch.float64


def compute_attention_sink(attentions, eps):
    """Gu et al.'s metric; attentions [N, L, H, T, T]. Returns importance [N, L, H, T], metric [T]."""
    T = attentions.shape[-1]
    ratios = torch.arange(T, 0, -1, dtype=attentions.dtype)[None, None, None, :]
    importance = (attentions / ratios).sum(dim=-2)
    metric = (importance > eps).float().mean(dim=(0, 1, 2))
    return importance, metric


def read_safetensors(path):
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.tensor(array.astype(np.float64) if array.dtype.kind == "f" else array)
    return out


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x, theta):
    T, HS = x.shape[-2], x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, HS, 2, dtype=DTYPE) / HS))
    angle = torch.arange(T, dtype=DTYPE)[:, None] * inv_freq[None, :]
    emb = torch.cat((angle, angle), dim=-1)
    return x * emb.cos() + rotate_half(x) * emb.sin()


class CapturingModel:
    """The forward of a sinklab model config, keeping what the probe reads."""

    def __init__(self, cfg, params):
        self.cfg, self.p = cfg, params

    def norm(self, x, prefix):
        w, b = self.p.get(prefix + ".weight"), self.p.get(prefix + ".bias")
        if self.cfg["norm"] == "layernorm":
            return F.layer_norm(x, (x.shape[-1],), w, b, self.cfg["norm_eps"])
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg["norm_eps"]) * w

    def run(self, tokens, edit=None):
        cfg, p = self.cfg, self.p
        B, T = tokens.shape
        NH, NKV, HS = cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
        if cfg["norm_placement"] != "pre" or cfg["attention"] != "softmax" or cfg["window"] or cfg["prefix"]:
            raise SystemExit("probe_reference.py covers pre-norm causal softmax models")
        x = F.embedding(tokens, p["embed.tokens"])
        if cfg["pe"] == "learned":
            x = x + p["embed.positions"][:T]
        elif cfg["pe"] not in ("rope", "nope"):
            raise SystemExit(f"unsupported positions {cfg['pe']}")
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        first_key_bonus = torch.zeros(T, T, dtype=torch.float64)
        if edit and edit["kind"] == "mask_first":
            K = edit["count"]
            causal[K:, :K] = False  # queries after the first K keys no longer see them
        elif edit and edit["kind"] == "scale_first":
            first_key_bonus[:, 0] = math.log(edit["factor"])  # F e^s = e^(s + ln F)
        maps, queries, keys, values, outputs, heads = [], [], [], [], [], []
        for l in range(cfg["layers"]):
            pre = f"layers.{l}."
            h = self.norm(x, pre + "attn_norm")
            q = F.linear(h, p[pre + "attn.wq"], p.get(pre + "attn.bq")).view(B, T, NH, HS).transpose(1, 2)
            k = F.linear(h, p[pre + "attn.wk"], p.get(pre + "attn.bk")).view(B, T, NKV, HS).transpose(1, 2)
            v = F.linear(h, p[pre + "attn.wv"], p.get(pre + "attn.bv")).view(B, T, NKV, HS).transpose(1, 2)
            if cfg["pe"] == "rope":
                q, k = apply_rope(q, cfg["rope_theta"]), apply_rope(k, cfg["rope_theta"])
            queries.append(q)
            keys.append(k)
            values.append(v)
            group = NH // NKV
            scores = q @ k.repeat_interleave(group, dim=1).transpose(-1, -2) / math.sqrt(HS)
            A = torch.softmax((scores + first_key_bonus).masked_fill(~causal, float("-inf")), dim=-1)
            maps.append(A)
            att = (A @ v.repeat_interleave(group, dim=1)).transpose(1, 2).reshape(B, T, NH * HS)
            heads.append(att.view(B, T, NH, HS))
            x = x + F.linear(att, p[pre + "attn.wo"], p.get(pre + "attn.bo"))
            h = self.norm(x, pre + "mlp_norm")
            if cfg["mlp"] == "swiglu":
                a = F.silu(F.linear(h, p[pre + "mlp.w_gate"])) * F.linear(h, p[pre + "mlp.w_up"])
            elif cfg["mlp"] == "gelu":
                a = F.gelu(F.linear(h, p[pre + "mlp.w_up"], p.get(pre + "mlp.b_up")), approximate="tanh")
            else:
                raise SystemExit(f"unsupported mlp {cfg['mlp']}")
            x = x + F.linear(a, p[pre + "mlp.w_down"], p.get(pre + "mlp.b_down"))
            outputs.append(x)
        x = self.norm(x, "final_norm")
        logits = F.linear(x, p["embed.tokens"] if cfg["tied_embeddings"] else p["lm_head"])
        return {"maps": torch.stack(maps, dim=1),  # [N, L, H, T, T]
                "queries": queries, "keys": keys, "values": values,  # [L] of [N, heads, T, HS]
                "heads": heads,  # [L] of [N, T, NH, HS], each head's output before the output projection
                "outputs": torch.stack(outputs, dim=1),  # [N, L, T, C]
                "logits": logits}


def load_params(case, folder):
    flat = np.fromfile(os.path.join(folder, "params.bin"), dtype="<f4").astype(np.float64)
    return {p["name"]: torch.tensor(flat[p["offset"]:p["offset"] + p["numel"]]).reshape(p["shape"])
            for p in case["params"]}


def sink_metrics(maps, case):
    importance, metric = compute_attention_sink(maps, case["eps"])
    K = case["positions"]
    alpha = importance.mean(dim=0)  # [L, H, T]
    entropy = -torch.where(maps > 0, maps * maps.log(), torch.zeros_like(maps)).sum(-1)  # [N, L, H, T]
    return {"alpha_k": [alpha[:, :, k].tolist() for k in range(K)],
            "sink_k": (metric[:K] * 100).tolist(),
            "entropy": entropy.mean(dim=-1).mean(dim=0).tolist()}


def residual_metrics(outputs, case):
    """outputs [N, L, T, C]: massive activations and ||h_1|| / mean ||h_t|| per layer."""
    N, L, T, C = outputs.shape
    massive = []
    for l in range(L):
        h = outputs[:, l]  # [N, T, C]
        medians = torch.stack([h[n].abs().flatten().median() for n in range(N)])
        bar = torch.clamp(medians * case["massive_relative"], min=case["massive_absolute"])
        count = int((h.abs() > bar[:, None, None]).sum())
        flat = h.abs().flatten()
        order = torch.argsort(flat, descending=True, stable=True)[:3]
        top = [[int(i // (T * C)), int(i % (T * C) // C) + 1, int(i % C), float(h.flatten()[i])] for i in order]
        massive.append({"median": float(medians.mean()), "top": top, "count": count})
    return {"massive": massive, "hidden_norm_ratio": norm_ratio(outputs.transpose(0, 1)[:, :, None]).squeeze(1).tolist()}


def norm_ratio(x):
    """x [L, N, G, T, W] -> [L, G]: mean_n ||x_1|| / mean_{t>1} mean_n ||x_t||."""
    norms = x.norm(dim=-1).mean(dim=1)  # [L, G, T]
    return norms[..., 0] / norms[..., 1:].mean(dim=-1)


def geometry(queries, keys, NH, NKV):
    first, rest = [], []
    for q, k in zip(queries, keys):  # [N, NH, T, HS], [N, NKV, T, HS]
        k = k.repeat_interleave(NH // NKV, dim=1)
        cos = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-1, -2)  # [N, NH, T, T]
        T = cos.shape[-1]
        first.append(cos[..., :, 0].mean(dim=-1).mean(dim=0).tolist())
        later = torch.ones(T, T, dtype=torch.bool).tril()
        later[:, 0] = False
        per_query = (cos * later).sum(-1)[..., 1:] / later.sum(-1)[1:]
        rest.append(per_query.mean(dim=-1).mean(dim=0).tolist())
    return first, rest


def run_model_case(case, folder):
    cfg = case["config"]
    model = CapturingModel(cfg, load_params(case, folder))
    tokens = torch.tensor(case["tokens"], dtype=torch.long).view(case["B"], case["T"])
    got = model.run(tokens)
    out = sink_metrics(got["maps"], case)
    out.update(residual_metrics(got["outputs"], case))
    out["key_norm_ratio"] = norm_ratio(torch.stack(got["keys"])).tolist()  # stacked: [L, N, NKV, T, HS]
    out["value_norm_ratio"] = norm_ratio(torch.stack(got["values"])).tolist()
    out["cos_query_first_key"], out["cos_query_other_keys"] = geometry(got["queries"], got["keys"], cfg["heads"],
                                                                       cfg["kv_heads"])
    # the no-op reading: mean ||o_t|| of each head over its mean ||v_j||, both over positions then samples
    group = cfg["heads"] // cfg["kv_heads"]
    out["head_output_ratio"] = [
        (o.norm(dim=-1).mean(dim=1).mean(dim=0) /
         v.norm(dim=-1).mean(dim=-1).mean(dim=0).repeat_interleave(group)).tolist()
        for o, v in zip(got["heads"], got["values"])]
    targets = torch.tensor(case["targets"], dtype=torch.long)
    if (targets >= 0).all():
        out["loss"] = float(F.cross_entropy(got["logits"].reshape(-1, got["logits"].shape[-1]), targets))
    out["interventions"] = {}
    for edit in case.get("interventions", []):
        edited_tokens = tokens.clone()
        if edit["kind"] == "replace_first":
            edited_tokens[:, 0] = edit["id"]
        edited = model.run(edited_tokens, edit)
        logits = edited["logits"]
        out["interventions"][edit["name"]] = {
            "loss": float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets)),
            "sink_k": sink_metrics(edited["maps"], case)["sink_k"]}
    return out


def run_fixture_case(case):
    ref = read_safetensors(case["reference"])
    out = sink_metrics(ref["attentions"][None], case)
    out.update(residual_metrics(ref["layer_outputs"][None], case))
    out["input_ids"] = ref["input_ids"].tolist()
    return out


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    for folder in argv[1:]:
        with open(os.path.join(folder, "case.json")) as f:
            case = json.load(f)
        out = run_model_case(case, folder) if case["kind"] == "model" else run_fixture_case(case)
        with open(os.path.join(folder, "reference.json"), "w") as f:
            json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
