#!/usr/bin/python3
"""PyTorch reference of sinklab's over-mixing test (`sinklab perturb`), for
tests/perturb/test_perturb_oracle.cpp.

Usage: /usr/bin/python3 perturb_reference.py CASE_DIR [CASE_DIR ...]

Written from the definitions (docs/perturb.md; Barbero, Gu et al. 2025, "Why do LLMs attend to the
first token?"), not from the C++. For a clean window x and a perturbed x' (tokens first..last
replaced), at each block output h_l and each position t > last:
    r_l,t = ||h_l,t(x') - h_l,t(x)|| / ||h_l,t(x)||
and the same per attention head on the head's output before the output projection. Per layer: the
mean and torch.quantile(., 0.9) (linear interpolation) over every perturbation and position after
it; per layer and distance d = t - last, the mean; per layer and position t, the mean over
perturbations of r_l,t at every position. An encoder attends both ways, so there the positions on
both sides are measured: every t outside first..last, at distance |d| (t - last after the
perturbed tokens, first - t before them). Everything in float64.

Each CASE_DIR holds case.json with "kind":
  "model":   a sinklab model as tests/oracle/oracle_case.h writes it (config, params table,
             params.bin); its forward is engine_reference.py's Model (written from the published
             definitions), with the head outputs and block outputs captured.
  "hf_gpt2": "folder": a Hugging Face GPT-2 checkpoint of tests/fixtures/hf/; the forward below is
             written from Hugging Face's GPT-2 conventions (Conv1D weights (in, out), gelu_new,
             LayerNorm, learned positions) and checked first against the block outputs that
             transformers captured in the folder's reference.safetensors (within 1e-4).
  "hf_encoder": "folder": a Hugging Face BERT / RoBERTa / XLM-R masked-LM folder of
             tests/fixtures/hf-encoders/; the forward is encoder_reference.py's Encoder (written from
             the published BERT and RoBERTa conventions; every query sees every key), token types 0.
             Optional "loss_windows" [W][T] and "loss_targets" [W][T] (-1: no target): each
             condition's masked-LM loss, the mean cross-entropy over every target of every window.
and for all: "T", "windows" [W][T], "perturbations" [{"window", "first", "replacement"}],
"conditions" [{"name", "hidden_first" (mask-first:K), "drop_first" (drop-bos: the first token of
every window left out), "without_slot" (mask-slot: the design's slot column or sink token removed)}].
It writes reference.json: {"conditions": {name: {"residual": [L] of {"mean", "p90", "count"},
"head": [L][H] of the same, "heads_pooled": [L], "residual_by_distance": [L][T-1],
"heads_by_distance": [L][T-1], "residual_by_position": [L][T], "loss" (hf_encoder with a loss
input, else null)}}} with NaN as null.
"""
import json
import math
import os
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # a declared test dependency: scripts/setup.sh installs python3-torch
    print(f"perturb_reference.py: cannot import {e.name} ({e}); install python3-torch (scripts/setup.sh)",
          file=sys.stderr)
    sys.exit(2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import encoder_reference  # noqa: E402  (next to this file)
import engine_reference as engine  # noqa: E402
import probe_reference  # noqa: E402

DTYPE = torch.float64


def gelu_new(x):
    # Hugging Face ACT2FN["gelu_new"]: the tanh approximation
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gpt2_forward(w, cfg, tokens, hidden_first):
    """Hugging Face GPT-2 in float64: returns (blocks [L] of (B, T, C), heads [L] of (B, T, C))."""
    B, T = tokens.shape
    C, NH, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    HS = C // NH
    eps = cfg["layer_norm_epsilon"]
    p = "transformer."
    x = w[p + "wte.weight"][tokens] + w[p + "wpe.weight"][:T]
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    visible = (j <= i) & ~((j < hidden_first) & (i >= hidden_first))
    blocks, heads = [], []
    for l in range(L):
        h = f"{p}h.{l}."
        a = F.layer_norm(x, (C,), w[h + "ln_1.weight"], w[h + "ln_1.bias"], eps)
        qkv = a @ w[h + "attn.c_attn.weight"] + w[h + "attn.c_attn.bias"]  # Conv1D: x W + b
        q, k, v = (t.view(B, T, NH, HS).transpose(1, 2) for t in qkv.split(C, dim=-1))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(HS)
        A = torch.softmax(scores.masked_fill(~visible, float("-inf")), dim=-1)
        o = (A @ v).transpose(1, 2).reshape(B, T, C)  # the heads, merged
        heads.append(o)
        x = x + o @ w[h + "attn.c_proj.weight"] + w[h + "attn.c_proj.bias"]
        m = F.layer_norm(x, (C,), w[h + "ln_2.weight"], w[h + "ln_2.bias"], eps)
        m = gelu_new(m @ w[h + "mlp.c_fc.weight"] + w[h + "mlp.c_fc.bias"])
        x = x + m @ w[h + "mlp.c_proj.weight"] + w[h + "mlp.c_proj.bias"]
        blocks.append(x)
    return blocks, heads


def hf_gpt2_runner(case):
    folder = case["folder"]
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    w = probe_reference.read_safetensors(os.path.join(folder, "model.safetensors"))
    ref = probe_reference.read_safetensors(os.path.join(folder, "reference.safetensors"))
    blocks, _ = gpt2_forward(w, cfg, ref["input_ids"][None].long(), 0)
    for l, (mine, theirs) in enumerate(zip(blocks, ref["layer_outputs"])):
        err = (mine[0] - theirs).abs().max().item()
        if err > 1e-4 * max(1.0, theirs.abs().max().item()):
            raise SystemExit(f"perturb_reference.py: the GPT-2 forward differs from transformers' layer {l} output "
                             f"by {err}")
    NH = cfg["n_head"]

    def run(tokens, condition):
        if condition["without_slot"]:
            raise SystemExit("GPT-2 has no slot")
        blocks, heads = gpt2_forward(w, cfg, tokens, condition["hidden_first"])
        return blocks, heads, NH
    return run


def hf_encoder_runner(case):
    encoder = encoder_reference.Encoder(case["folder"])

    def forward(tokens, condition):
        if condition["without_slot"]:
            raise SystemExit("encoders have no slot")
        B, T = tokens.shape
        heads = []
        with torch.no_grad():
            logits, _, hidden, _ = encoder.forward(tokens, torch.zeros_like(tokens), torch.full((B,), T),
                                                   hidden_first=condition["hidden_first"], heads_out=heads)
        return logits, list(hidden[1:]), heads  # hidden[0] is the embedding output

    def run(tokens, condition):
        _, blocks, heads = forward(tokens, condition)
        return blocks, heads, encoder.heads

    def loss(tokens, targets, condition):
        logits, _, _ = forward(tokens, condition)
        return float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1))
    run.bidirectional = True
    run.loss = loss
    return run


def model_runner(case, folder):
    params = engine.load_params(case, folder)
    cfg = dict(case["config"])
    sink = cfg["attention"] == "sink_token"

    def run(tokens, condition):
        c = dict(cfg)
        if condition["without_slot"]:
            # the design without its slot column or sink token; its k*, v*, logit are not read
            c["attention"] = "softmax"
        capture = {"heads": [], "blocks": []}
        model = engine.Model(c, params, hidden_first=condition["hidden_first"], capture=capture)
        with torch.no_grad():
            model.logits(tokens)
        drop = 1 if sink and not condition["without_slot"] else 0  # the sink token's row
        return ([b[:, drop:] for b in capture["blocks"]], [h[:, drop:] for h in capture["heads"]], c["heads"])
    return run


def relative(a, b):
    """||a - b|| / ||b|| over the last dim; NaN where ||b|| = 0."""
    norm = b.norm(dim=-1)
    return torch.where(norm > 0, (a - b).norm(dim=-1) / norm, torch.full_like(norm, float("nan")))


def summary(values):
    values = values[~values.isnan()]
    if values.numel() == 0:
        return {"mean": None, "p90": None, "count": 0}
    return {"mean": float(values.mean()), "p90": float(torch.quantile(values, 0.9)), "count": int(values.numel())}


def mean_or_none(values):
    values = values[~values.isnan()]
    return float(values.mean()) if values.numel() else None


def run_condition(run, case, condition):
    T = case["T"]
    windows = torch.tensor(case["windows"], dtype=torch.long)
    perturbations = case["perturbations"]
    drop = 1 if condition["drop_first"] else 0
    clean = windows[:, drop:]
    perturbed = []
    for p in perturbations:
        x = windows[p["window"]].clone()
        x[p["first"]:p["first"] + len(p["replacement"])] = torch.tensor(p["replacement"])
        perturbed.append(x[drop:])
    perturbed = torch.stack(perturbed)
    Tc = T - drop
    blocks_clean, heads_clean, NH = run(clean, condition)
    blocks_pert, heads_pert, _ = run(perturbed, condition)
    L = len(blocks_clean)
    which = torch.tensor([p["window"] for p in perturbations])
    last = torch.tensor([p["first"] + len(p["replacement"]) - 1 - drop for p in perturbations])
    first = torch.tensor([p["first"] - drop for p in perturbations])
    pos = torch.arange(Tc)[None, :]
    if getattr(run, "bidirectional", False):
        # every position outside first..last, at |d|
        measured = (pos > last[:, None]) | (pos < first[:, None])                               # (P, Tc)
        distance = torch.where(pos > last[:, None], pos - last[:, None], first[:, None] - pos)  # (P, Tc)
    else:
        measured = pos > last[:, None]                       # (P, Tc)
        distance = pos - last[:, None]                    # (P, Tc)
    out = {"residual": [], "head": [], "heads_pooled": [], "residual_by_distance": [], "heads_by_distance": [],
           "residual_by_position": [], "loss": None}
    if "loss_windows" in case:
        out["loss"] = run.loss(torch.tensor(case["loss_windows"], dtype=torch.long)[:, drop:],
                               torch.tensor(case["loss_targets"], dtype=torch.long)[:, drop:], condition)
    for l in range(L):
        r = relative(blocks_pert[l], blocks_clean[l][which])  # (P, Tc)
        hp = heads_pert[l].view(*heads_pert[l].shape[:2], NH, -1)
        hc = heads_clean[l][which].view(*heads_clean[l][which].shape[:2], NH, -1)
        rh = relative(hp, hc)                                 # (P, Tc, NH)
        out["residual"].append(summary(r[measured]))
        out["head"].append([summary(rh[..., h][measured]) for h in range(NH)])
        out["heads_pooled"].append(summary(rh[measured].reshape(-1)))
        out["residual_by_distance"].append([mean_or_none(r[distance == d]) for d in range(1, Tc)])
        out["heads_by_distance"].append([mean_or_none(rh[distance == d].reshape(-1)) for d in range(1, Tc)])
        out["residual_by_position"].append([mean_or_none(r[:, t]) for t in range(Tc)])
    return out


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    for folder in argv[1:]:
        with open(os.path.join(folder, "case.json")) as f:
            case = json.load(f)
        runners = {"model": lambda: model_runner(case, folder), "hf_gpt2": lambda: hf_gpt2_runner(case),
                   "hf_encoder": lambda: hf_encoder_runner(case)}
        run = runners[case["kind"]]()
        out = {"conditions": {c["name"]: run_condition(run, case, c) for c in case["conditions"]}}
        with open(os.path.join(folder, "reference.json"), "w") as f:
            json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
