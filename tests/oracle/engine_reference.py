#!/usr/bin/python3
"""PyTorch reference of sinklab's transformer, for the engine's oracle tests.

Usage: /usr/bin/python3 engine_reference.py CASE_DIR [CASE_DIR ...]

Written from the definitions (DESIGN.md section 3, model/config.h), not from the C++: torch's own
layer_norm, gelu(approximate='tanh'), silu, softmax over a -inf mask and cross_entropy; RoPE in the
Hugging Face rotate_half convention; grouped-query attention by repeat_interleave of the kv heads
(query head h reads kv head h // (NH / NKV)). The attention designs (slots, value bias, sigmoid,
output gates, ...) come from attention_designs_reference.py, written from the published formulas;
this file adds what the model around them does: the sink token (a learnable vector prepended at
position 0, excluded from the logits), the gate logits x W_g from the attention sub-layer's input,
ALiBi (ofirpress/attention_with_linear_biases get_slopes, bias -m_h |i - j|), T5 relative buckets
(Hugging Face T5Attention._relative_position_bucket, bidirectional=False, one table for all layers),
post-norm blocks norm(x + f(x)), bidirectional attention ("causal": false: every key visible, as
BERT's encoder) and the exact GELU (gelu_erf). Everything is computed in float64, so the reference is
sharp and the comparison measures sinklab's float32 error alone.

Each CASE_DIR holds (written by the C++ tests through tests/oracle/oracle_case.h):
  case.json   {"config": ModelConfig::to_json(), "params": [{name, shape, offset, numel, decay}],
               "num_params", "B", "T", "tokens" (B*T), "targets" (B*T, < 0 ignored),
               optional "lengths" (B: a right-padded batch, keys beyond each length hidden),
               optional "adamw": {"beta1", "beta2", "eps", "weight_decay", "clip",
                                  "steps": [{"lr", "tokens", "targets"}], "sinklab_grads": FILE}}
  params.bin  the model's flat parameter buffer, float32 little-endian, in the table's layout.
  FILE        with "adamw": sinklab's gradient (before clipping) at each step, float32, steps x num_params.
This script writes into the same folder:
  reference.json  {"loss", "dtype": "float64", "sections": [[name, count], ...],
                   optional "adamw": {"losses": [...], "grad_norms": [...]}}
  reference.bin   float64 little-endian, the sections back to back: "logits" (B*T*V) and "grads"
                  (num_params: d mean loss / d params, in the parameter layout); with "adamw" also
                  "adamw_grads" (steps x num_params: torch's own gradient at each step) and
                  "adamw_params" (num_params: the parameters after the steps).

The AdamW steps are torch.optim.AdamW with two groups (weight decay on the parameters marked
"decay", none on the rest), torch.nn.utils.clip_grad_norm_ before each step and the learning rate
of each step set on both groups. Adam divides by sqrt(v), which turns float32 rounding in a tiny
gradient entry into an O(lr) change of the parameter (PyTorch float32 against float64 differs by
4e-4 relative after three steps on these models); so the optimizer is driven by sinklab's gradient
of each step, read from FILE, while torch's own float64 gradient at the same point is reported in
"adamw_grads" for the C++ test to compare. "grad_norms" are the norms clip_grad_norm_ saw.
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
    print(f"engine_reference.py: cannot import {e.name} ({e}); install python3-torch and python3-numpy "
          "(scripts/setup.sh)", file=sys.stderr)
    sys.exit(2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attention_designs_reference as designs  # noqa: E402  (next to this file)

DTYPE = torch.float64
def load_params(case, folder):
    flat = np.fromfile(os.path.join(folder, "params.bin"), dtype="<f4")
    if flat.size != case["num_params"]:
        raise SystemExit(f"{folder}/params.bin holds {flat.size} floats, case.json says {case['num_params']}")
    params = {}
    for p in case["params"]:
        values = flat[p["offset"]:p["offset"] + p["numel"]].astype(np.float64)
        params[p["name"]] = torch.tensor(values, dtype=DTYPE).reshape(p["shape"]).requires_grad_(True)
    return params


def sinusoidal_table(T, C):
    # Vaswani et al.: sin on even dims, cos on odd, frequency 10000^(-i/C) for the pair starting at i
    table = torch.zeros(T, C, dtype=DTYPE)
    pos = torch.arange(T, dtype=DTYPE)[:, None]
    i = torch.arange(0, C, 2, dtype=DTYPE)
    angle = pos * torch.pow(10000.0, -i / C)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle)[:, : C // 2]
    return table


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x, T, theta):
    # x (B, heads, T, HS); Hugging Face Llama: x * cos + rotate_half(x) * sin over the head
    HS = x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, HS, 2, dtype=DTYPE) / HS))
    angle = torch.arange(T, dtype=DTYPE)[:, None] * inv_freq[None, :]  # (T, HS/2)
    emb = torch.cat((angle, angle), dim=-1)
    return x * emb.cos() + rotate_half(x) * emb.sin()


class Model:
    def __init__(self, cfg, params, hidden_first=0, capture=None, lengths=None):
        self.cfg = cfg
        self.p = params
        # mask-first:K (issue 20): keys j < K hidden from every query i >= K, in every layer
        self.hidden_first = hidden_first
        # with a dict: "heads" gets each layer's head outputs (B, T, NH*HS) before the output
        # projection, "blocks" each block's output (B, T, C); the sink token's row included
        self.capture = capture
        self.lengths = lengths  # (B) real tokens of a right-padded batch, or None

    def get(self, name):
        return self.p.get(name)  # None when the model has no such parameter (a bias)

    def norm(self, x, prefix):
        cfg = self.cfg
        w, b = self.get(prefix + ".weight"), self.get(prefix + ".bias")
        if cfg["norm"] == "layernorm":
            return F.layer_norm(x, (x.shape[-1],), w, b, cfg["norm_eps"])
        if cfg["norm"] == "rmsnorm":
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg["norm_eps"]) * w
        raise SystemExit(f"unsupported norm {cfg['norm']}")

    def attention(self, h, l, score_bias):
        cfg = self.cfg
        B, T, _ = h.shape
        NH, NKV, HS = cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
        pre = f"layers.{l}.attn."
        q = F.linear(h, self.p[pre + "wq"], self.get(pre + "bq")).view(B, T, NH, HS).transpose(1, 2)
        k = F.linear(h, self.p[pre + "wk"], self.get(pre + "bk")).view(B, T, NKV, HS).transpose(1, 2)
        v = F.linear(h, self.p[pre + "wv"], self.get(pre + "bv")).view(B, T, NKV, HS).transpose(1, 2)
        if cfg["pe"] == "rope":
            q = apply_rope(q, T, cfg["rope_theta"])
            k = apply_rope(k, T, cfg["rope_theta"])
        qkv = torch.cat([q, k, v], dim=1).transpose(1, 2).reshape(B, T, (NH + 2 * NKV) * HS)
        design = cfg["attention"]
        sink = design == "sink_token"
        case = {"design": "softmax" if sink else design, "B": B, "T": T, "NH": NH, "NKV": NKV, "HS": HS,
                "window": cfg["window"], "prefix": cfg["prefix"] + 1 if sink and cfg["prefix"] > 0 else cfg["prefix"],
                "hidden_first": self.hidden_first,
                "scale": cfg.get("attention_scale", 0.0) or 1.0 / math.sqrt(HS),
                "causal": cfg.get("causal", True), "key_lengths": self.lengths}
        inputs = {"qkv": qkv}
        for name in ("slot_k", "slot_v", "slot_score", "sigmoid_bias", "value_bias"):
            if self.get(pre + name) is not None:
                inputs[name] = self.p[pre + name]
        if design.startswith("gated"):  # Qwen3-Next: gate logits from the attention sub-layer's input
            inputs["gate"] = F.linear(h, self.p[pre + "w_gate"])
        if score_bias is not None:
            inputs["score_bias"] = score_bias
        out, _, _ = designs.attention(case, inputs)
        if self.capture is not None:
            self.capture["heads"].append(out)
        return F.linear(out, self.p[pre + "wo"], self.get(pre + "bo"))

    def mlp(self, h, l):
        kind = self.cfg["mlp"]
        pre = f"layers.{l}.mlp."
        if kind in ("gelu", "gelu_erf", "relu"):
            a = F.linear(h, self.p[pre + "w_up"], self.get(pre + "b_up"))
            a = {"gelu": lambda t: F.gelu(t, approximate="tanh"), "gelu_erf": F.gelu, "relu": F.relu}[kind](a)
        elif kind in ("swiglu", "geglu"):
            gate = F.linear(h, self.p[pre + "w_gate"])
            up = F.linear(h, self.p[pre + "w_up"])
            a = (F.silu(gate) if kind == "swiglu" else F.gelu(gate, approximate="tanh")) * up
        else:
            raise SystemExit(f"unsupported mlp {kind}")
        return F.linear(a, self.p[pre + "w_down"], self.get(pre + "b_down"))

    def logits(self, tokens):
        cfg = self.cfg
        x = F.embedding(tokens, self.p["embed.tokens"])
        sink = cfg["attention"] == "sink_token"
        if sink:  # StreamingLLM / Gu et al.: a learnable token prepended to every sequence, at position 0
            B = tokens.shape[0]
            x = torch.cat([self.p["embed.sink_token"].expand(B, 1, -1), x], dim=1)
        T = x.shape[1]
        if cfg["pe"] == "learned":
            x = x + self.p["embed.positions"][:T]
        elif cfg["pe"] == "sinusoidal":
            x = x + sinusoidal_table(T, cfg["d_model"])
        elif cfg["pe"] not in ("rope", "nope", "alibi", "relative"):
            raise SystemExit(f"unsupported positions {cfg['pe']}")
        score_bias = None
        if cfg["pe"] == "alibi":
            score_bias = designs.alibi_bias(cfg["heads"], T)
        elif cfg["pe"] == "relative":
            score_bias = designs.relative_bias(self.p["embed.relative_bias"], T)
        for l in range(cfg["layers"]):
            if cfg["norm_placement"] == "pre":
                x = x + self.attention(self.norm(x, f"layers.{l}.attn_norm"), l, score_bias)
                x = x + self.mlp(self.norm(x, f"layers.{l}.mlp_norm"), l)
            elif cfg["norm_placement"] == "post":  # norm(x + f(x))
                x = self.norm(x + self.attention(x, l, score_bias), f"layers.{l}.attn_norm")
                x = self.norm(x + self.mlp(x, l), f"layers.{l}.mlp_norm")
            else:
                raise SystemExit(f"unsupported norm_placement {cfg['norm_placement']}")
            if self.capture is not None:
                self.capture["blocks"].append(x)
        if sink:  # the sink token has no prediction: logits and loss cover the real tokens
            x = x[:, 1:]
        x = self.norm(x, "final_norm")
        head = self.p["embed.tokens"] if cfg["tied_embeddings"] else self.p["lm_head"]
        return F.linear(x, head)

    def loss(self, tokens, targets):
        logits = self.logits(tokens)
        targets = targets.clone()
        targets[targets < 0] = -100  # sinklab ignores every negative target
        return logits, F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


def batch(case, entry):
    B, T = case["B"], case["T"]
    tokens = torch.tensor(entry["tokens"], dtype=torch.long).view(B, T)
    targets = torch.tensor(entry["targets"], dtype=torch.long).view(B, T)
    return tokens, targets


def flat_grads(case, params):
    out = np.zeros(case["num_params"], dtype=np.float64)
    for p in case["params"]:
        g = params[p["name"]].grad
        if g is not None:
            out[p["offset"]:p["offset"] + p["numel"]] = g.detach().reshape(-1).numpy()
    return out


def flat_params(case, params):
    out = np.zeros(case["num_params"], dtype=np.float64)
    for p in case["params"]:
        out[p["offset"]:p["offset"] + p["numel"]] = params[p["name"]].detach().reshape(-1).numpy()
    return out


def run_adamw(case, folder):
    spec = case["adamw"]
    params = load_params(case, folder)
    model = Model(case["config"], params)
    n, steps = case["num_params"], len(spec["steps"])
    sinklab_grads = np.fromfile(os.path.join(folder, spec["sinklab_grads"]), dtype="<f4").astype(np.float64)
    if sinklab_grads.size != steps * n:
        raise SystemExit(f"{spec['sinklab_grads']} holds {sinklab_grads.size} floats, expected {steps} x {n}")
    decay = [params[p["name"]] for p in case["params"] if p["decay"]]
    no_decay = [params[p["name"]] for p in case["params"] if not p["decay"]]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": spec["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=spec["steps"][0]["lr"], betas=(spec["beta1"], spec["beta2"]), eps=spec["eps"])
    everything = list(params.values())
    losses, norms, own_grads = [], [], []
    for k, step in enumerate(spec["steps"]):
        opt.zero_grad(set_to_none=False)
        tokens, targets = batch(case, step)
        _, loss = model.loss(tokens, targets)
        loss.backward()
        losses.append(float(loss))
        own_grads.append(flat_grads(case, params))
        given = sinklab_grads[k * n:(k + 1) * n]
        for p in case["params"]:
            g = given[p["offset"]:p["offset"] + p["numel"]]
            t = params[p["name"]]
            t.grad = torch.tensor(g, dtype=DTYPE).reshape(p["shape"]).clone()
        norms.append(float(torch.nn.utils.clip_grad_norm_(everything, spec["clip"])))
        for group in opt.param_groups:
            group["lr"] = step["lr"]
        opt.step()
    sections = [("adamw_grads", np.concatenate(own_grads)), ("adamw_params", flat_params(case, params))]
    return sections, {"losses": losses, "grad_norms": norms}


def run_case(folder):
    with open(os.path.join(folder, "case.json")) as f:
        case = json.load(f)
    params = load_params(case, folder)
    model = Model(case["config"], params, lengths=case.get("lengths"))
    tokens, targets = batch(case, case)
    logits, loss = model.loss(tokens, targets)
    loss.backward()
    sections = [("logits", logits.detach().reshape(-1).numpy()), ("grads", flat_grads(case, params))]
    info = {"loss": float(loss), "dtype": "float64"}
    if "adamw" in case:
        more, info["adamw"] = run_adamw(case, folder)
        sections += more
    info["sections"] = [[name, int(values.size)] for name, values in sections]
    np.concatenate([values for _, values in sections]).astype("<f8").tofile(os.path.join(folder, "reference.bin"))
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(info, f, indent=1)


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    for folder in argv[1:]:
        run_case(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
