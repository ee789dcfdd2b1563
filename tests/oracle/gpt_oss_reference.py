#!/usr/bin/python3
"""A PyTorch reference of gpt-oss, for sinklab's gpt-oss tests and its memory benchmark.

Usage: /usr/bin/python3 gpt_oss_reference.py SPEC.json OUT_DIR

Written from the public conventions, never from sinklab's C++: openai/gpt-oss
gpt_oss/torch/model.py (RMSNorm, RoPE in the rotate-half convention with YaRN's "NTK by parts"
frequencies and concentration, sdpa() with the per-head sink logit concatenated after the scaled
and masked scores, softmax, sink column dropped; the MLP block: router with bias, topk sorted,
softmax over the chosen values, swiglu() with x[..., ::2] the gate and x[..., 1::2] the linear
part, clamps at swiglu_limit, alpha 1.702, (up + 1), expert biases) and gpt_oss/torch/weights.py
(MXFP4: 16 bytes of E2M1 codes per block of 32, low nibble first, value times 2^(scale - 127));
the tensor names, config keys, layer_types and the YaRN truncate/clamp rules are those of the
Hugging Face port (transformers models/gpt_oss, modeling_rope_utils._compute_yarn_parameters).

SPEC.json (written by the C++ tests and by bench/gpt_oss_memory.sh):
  {"config": {...config.json keys: vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
              num_key_value_heads, head_dim, num_local_experts, num_experts_per_tok,
              intermediate_size, sliding_window, layer_types (optional), rope_theta, rope_scaling
              (optional), swiglu_limit, max_position_embeddings, ...},
   "seed": int, "weight_scale": float (std of the BF16 matrices),
   "input_ids": [...] (optional: no reference without them), "greedy_steps": int}
The script writes OUT_DIR/config.json and OUT_DIR/model.safetensors (a gpt-oss folder in the
Hugging Face layout: experts as *_blocks / *_scales U8, everything else BF16, quantization_config
mxfp4) and, with input_ids, OUT_DIR/reference.safetensors computed in float64 from the stored
(BF16-rounded, MXFP4-decoded) weights:
  logits [T,V]; attentions [L,H,T,T+1] (the sink's weight in the last column); hidden_states
  [L+1,T,D] (0 the embeddings, L after the final norm); layer_outputs [L,T,D]; router_logits
  [L,T,E]; expert_ids [L,T,k] (topk order) and expert_weights [L,T,k]; greedy_ids [N] and
  greedy_logits [N,V] (full recompute at every step); top2_margin [N] (the greedy steps' gap
  between the two largest logits, to judge how sharp the ids are).
Experts are decoded one at a time, only when a token chooses them, and dropped after use, so the
reference of a model with gpt-oss-20b's layer shapes fits in a few GB.
"""
import json
import math
import os
import struct
import sys

try:
    import torch
except ImportError as e:  # a declared test dependency: scripts/setup.sh installs python3-torch
    print(f"gpt_oss_reference.py: cannot import {e.name} ({e}); install python3-torch (scripts/setup.sh)",
          file=sys.stderr)
    sys.exit(2)

DTYPE = torch.float64
FP4_VALUES = [+0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]
SWIGLU_ALPHA = 1.702


# ---- the safetensors format: 8-byte header length, JSON header, data (names sorted, no gaps) ----

def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        if t.dtype == torch.bfloat16:
            dtype, blob = "BF16", t.view(torch.int16).numpy().tobytes()
        elif t.dtype == torch.uint8:
            dtype, blob = "U8", t.numpy().tobytes()
        elif t.dtype == torch.float32:
            dtype, blob = "F32", t.numpy().tobytes()
        elif t.dtype == torch.int64:
            dtype, blob = "I64", t.numpy().tobytes()
        else:
            raise ValueError(f"{name}: unsupported dtype {t.dtype}")
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


# ---- MXFP4 (gpt_oss/torch/weights.py) ----

def mxfp4_decode(blocks, scales):
    """blocks [..., G, 16] uint8, scales [..., G] uint8 -> [..., G * 32] float64."""
    lut = torch.tensor(FP4_VALUES, dtype=DTYPE)
    lo = lut[(blocks & 0x0F).long()]
    hi = lut[(blocks >> 4).long()]
    values = torch.stack((lo, hi), dim=-1).reshape(*blocks.shape[:-1], 32)  # low nibble first
    values = values * torch.pow(torch.tensor(2.0, dtype=DTYPE), scales.to(DTYPE) - 127.0).unsqueeze(-1)
    return values.reshape(*blocks.shape[:-2], blocks.shape[-2] * 32)


def random_mxfp4(gen, count, rows, cols, target_std):
    """Random codes and per-block scales around the power of two that gives ~target_std."""
    blocks = torch.randint(0, 256, (count, rows, cols // 32, 16), generator=gen, dtype=torch.uint8)
    base = 127 + round(math.log2(target_std / 2.926))  # uniform E2M1 codes have RMS 2.926
    scales = (base + torch.randint(-1, 2, (count, rows, cols // 32), generator=gen)).to(torch.uint8)
    return blocks, scales


# ---- the model ----

def yarn(config, dim):
    """inv_freq [dim/2] and the cos/sin factor (transformers _compute_yarn_parameters, openai RotaryEmbedding)."""
    base = float(config["rope_theta"])
    pos_freqs = base ** (torch.arange(0, dim, 2, dtype=DTYPE) / dim)
    scaling = config.get("rope_scaling")
    if not scaling or scaling.get("rope_type", scaling.get("type")) in (None, "default"):
        return 1.0 / pos_freqs, 1.0
    assert scaling.get("rope_type", scaling.get("type")) == "yarn"
    factor = float(scaling["factor"])
    original = float(scaling.get("original_max_position_embeddings") or config["max_position_embeddings"])
    beta_fast = float(scaling.get("beta_fast") or 32)
    beta_slow = float(scaling.get("beta_slow") or 1)

    def correction_dim(rotations):
        return dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if scaling.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(dim // 2, dtype=DTYPE) - low) / (high - low)).clamp(0, 1)
    extrapolation, interpolation = 1.0 / pos_freqs, 1.0 / (factor * pos_freqs)
    inv_freq = interpolation * ramp + extrapolation * (1 - ramp)
    concentration = scaling.get("attention_factor") or (0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0)
    return inv_freq, concentration


def layer_windows(config):
    L = config["num_hidden_layers"]
    types = config.get("layer_types") or ["sliding_attention" if l % 2 == 0 else "full_attention" for l in range(L)]
    return [config["sliding_window"] if t == "sliding_attention" else 0 for t in types]


class Model:
    def __init__(self, config, weights):
        self.c, self.w = config, weights  # weights: name -> tensor (BF16 or U8), as stored

    def f(self, name):
        return self.w[name].to(DTYPE)

    def expert(self, l, proj, e):
        prefix = f"model.layers.{l}.mlp.experts.{proj}"
        return mxfp4_decode(self.w[prefix + "_blocks"][e], self.w[prefix + "_scales"][e])

    def rms_norm(self, x, name):
        eps = self.c.get("rms_norm_eps", 1e-5)
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * self.f(name)

    def forward(self, ids, record=False):
        c = self.c
        T, H, KV, HD = len(ids), c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        E, K, L = c["num_local_experts"], c["num_experts_per_tok"], c["num_hidden_layers"]
        limit = float(c.get("swiglu_limit", 7.0))
        inv_freq, concentration = yarn(c, HD)
        angles = torch.arange(T, dtype=DTYPE)[:, None] * inv_freq[None, :]
        cos, sin = angles.cos() * concentration, angles.sin() * concentration

        def rope(x):  # x [T, heads, HD]
            x1, x2 = torch.chunk(x, 2, dim=-1)
            return torch.cat((x1 * cos[:, None] - x2 * sin[:, None], x2 * cos[:, None] + x1 * sin[:, None]), dim=-1)

        out = {"attentions": [], "hidden_states": [], "layer_outputs": [], "router_logits": [], "expert_ids": [],
               "expert_weights": []}
        x = self.w["model.embed_tokens.weight"][torch.tensor(ids)].to(DTYPE)
        out["hidden_states"].append(x)
        for l, window in enumerate(layer_windows(c)):
            p = f"model.layers.{l}."
            t = self.rms_norm(x, p + "input_layernorm.weight")
            q = (t @ self.f(p + "self_attn.q_proj.weight").T + self.f(p + "self_attn.q_proj.bias")).view(T, H, HD)
            k = (t @ self.f(p + "self_attn.k_proj.weight").T + self.f(p + "self_attn.k_proj.bias")).view(T, KV, HD)
            v = (t @ self.f(p + "self_attn.v_proj.weight").T + self.f(p + "self_attn.v_proj.bias")).view(T, KV, HD)
            q, k = rope(q), rope(k)
            # sdpa(): query head h reads kv head h // (H / KV); mask then the sink column, softmax, drop it
            k = k.repeat_interleave(H // KV, dim=1)
            v = v.repeat_interleave(H // KV, dim=1)
            scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(HD)
            mask = torch.triu(torch.full((T, T), -math.inf, dtype=DTYPE), diagonal=1)
            if window > 0:
                mask += torch.tril(torch.full((T, T), -math.inf, dtype=DTYPE), diagonal=-window)
            sinks = self.f(p + "self_attn.sinks").reshape(H, 1, 1).expand(H, T, 1)
            weights = torch.softmax(torch.cat([scores + mask, sinks], dim=-1), dim=-1)
            attn = torch.einsum("hqk,khd->qhd", weights[..., :-1], v).reshape(T, H * HD)
            x = x + attn @ self.f(p + "self_attn.o_proj.weight").T + self.f(p + "self_attn.o_proj.bias")
            # MLP block
            t = self.rms_norm(x, p + "post_attention_layernorm.weight")
            logits = t @ self.f(p + "mlp.router.weight").T + self.f(p + "mlp.router.bias")
            top = torch.topk(logits, k=K, dim=-1, sorted=True)
            expert_weights = torch.softmax(top.values, dim=1)
            mlp = torch.zeros_like(x)
            up_bias, down_bias = self.f(p + "mlp.experts.gate_up_proj_bias"), self.f(p + "mlp.experts.down_proj_bias")
            for e in sorted(set(top.indices.flatten().tolist())):  # one decoded expert at a time
                gate_up, down = self.expert(l, "gate_up_proj", e), self.expert(l, "down_proj", e)
                for i, j in (top.indices == e).nonzero().tolist():
                    h = gate_up @ t[i] + up_bias[e]
                    gate, linear = h[::2].clamp(max=limit), h[1::2].clamp(min=-limit, max=limit)
                    h = gate * torch.sigmoid(SWIGLU_ALPHA * gate) * (linear + 1)
                    mlp[i] += expert_weights[i, j] * (down @ h + down_bias[e])
            x = x + mlp
            if record:
                out["attentions"].append(weights)
                out["layer_outputs"].append(x)
                out["router_logits"].append(logits)
                out["expert_ids"].append(top.indices)
                out["expert_weights"].append(expert_weights)
                if l + 1 < L:
                    out["hidden_states"].append(x)
        final = self.rms_norm(x, "model.norm.weight")
        out["hidden_states"].append(final)
        # the head a slice of the vocabulary at a time (a 201088 x 2880 head is 4.6 GB in float64)
        head = self.w["lm_head.weight"]
        out["logits"] = torch.cat([final @ head[v:v + 16384].to(DTYPE).T for v in range(0, head.shape[0], 16384)], dim=1)
        return out


# ---- random weights in the checkpoint layout ----

def make_weights(config, seed, weight_scale):
    gen = torch.Generator().manual_seed(seed)
    c = config
    D, H, KV, HD = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    E, I, V, L = c["num_local_experts"], c["intermediate_size"], c["vocab_size"], c["num_hidden_layers"]

    def normal(*shape, std=weight_scale, mean=0.0):
        return (mean + std * torch.randn(*shape, generator=gen)).to(torch.bfloat16)

    w = {"model.embed_tokens.weight": normal(V, D, std=1.0), "model.norm.weight": normal(D, std=0.2, mean=1.0),
         "lm_head.weight": normal(V, D)}
    for l in range(L):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = normal(D, std=0.2, mean=1.0)
        w[p + "post_attention_layernorm.weight"] = normal(D, std=0.2, mean=1.0)
        for name, rows in (("q", H * HD), ("k", KV * HD), ("v", KV * HD)):
            w[p + f"self_attn.{name}_proj.weight"] = normal(rows, D)
            w[p + f"self_attn.{name}_proj.bias"] = normal(rows, std=0.5)
        w[p + "self_attn.o_proj.weight"] = normal(D, H * HD)
        w[p + "self_attn.o_proj.bias"] = normal(D, std=0.5)
        w[p + "self_attn.sinks"] = normal(H, std=1.5)
        w[p + "mlp.router.weight"] = normal(E, D)
        w[p + "mlp.router.bias"] = normal(E, std=0.5)
        blocks, scales = random_mxfp4(gen, E, 2 * I, D, weight_scale)
        w[p + "mlp.experts.gate_up_proj_blocks"], w[p + "mlp.experts.gate_up_proj_scales"] = blocks, scales
        w[p + "mlp.experts.gate_up_proj_bias"] = normal(E, 2 * I, std=0.5)
        blocks, scales = random_mxfp4(gen, E, D, I, weight_scale)
        w[p + "mlp.experts.down_proj_blocks"], w[p + "mlp.experts.down_proj_scales"] = blocks, scales
        w[p + "mlp.experts.down_proj_bias"] = normal(E, D, std=0.5)
    return w


def hf_config(spec_config):
    c = {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "attention_bias": True,
         "hidden_act": "silu", "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "swiglu_limit": 7.0,
         "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
             "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}}
    c.update(spec_config)
    return c


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    spec = json.load(open(sys.argv[1]))
    out_dir = sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    config = hf_config(spec["config"])
    weights = make_weights(config, spec.get("seed", 1234), spec.get("weight_scale", 0.1))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), weights, {"format": "pt"})
    if "input_ids" not in spec:
        return
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    model = Model(config, weights)
    ids = list(spec["input_ids"])
    out = model.forward(ids, record=True)
    greedy_ids, greedy_logits, margins = [], [], []
    sequence, step = list(ids), out
    for _ in range(spec.get("greedy_steps", 0)):
        last = step["logits"][-1]
        top2 = torch.topk(last, 2).values
        margins.append(float(top2[0] - top2[1]))
        greedy_ids.append(int(torch.argmax(last)))
        greedy_logits.append(last)
        sequence.append(greedy_ids[-1])
        step = model.forward(sequence)
    f32 = lambda t: t.to(torch.float32)
    reference = {
        "input_ids": torch.tensor(ids, dtype=torch.int64),
        "logits": f32(out["logits"]),
        "attentions": f32(torch.stack(out["attentions"])),
        "hidden_states": f32(torch.stack(out["hidden_states"])),
        "layer_outputs": f32(torch.stack(out["layer_outputs"])),
        "router_logits": f32(torch.stack(out["router_logits"])),
        "expert_ids": torch.stack(out["expert_ids"]).to(torch.int64),
        "expert_weights": f32(torch.stack(out["expert_weights"])),
        "greedy_ids": torch.tensor(greedy_ids, dtype=torch.int64),
        "top2_margin": torch.tensor(margins, dtype=torch.float32),
    }
    if greedy_logits:
        reference["greedy_logits"] = f32(torch.stack(greedy_logits))
    write_safetensors(os.path.join(out_dir, "reference.safetensors"), reference,
                      {"compute_dtype": "float64", "written_by": "tests/oracle/gpt_oss_reference.py"})


if __name__ == "__main__":
    main()
