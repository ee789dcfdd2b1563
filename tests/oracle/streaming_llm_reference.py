#!/usr/bin/python3
"""PyTorch reference of long-stream evaluation with StreamingLLM's cache and llama.cpp's context shift,
for `sinklab stream`'s oracle test (tests/cli/test_stream_cli.cpp).

Usage: /usr/bin/python3 streaming_llm_reference.py MODEL_DIR TEXT_FILE TOKENS OUT_JSON POLICY [POLICY ...]

Written from the published conventions (docs/streaming.md), not from sinklab's C++:
- The model is a Llama (RMSNorm, rotary embeddings in the Hugging Face rotate_half convention with
  the angle position * inv_freq taken in float32 as HF does, SwiGLU MLP, no biases, grouped-query
  attention by repeat_interleave of the kv heads), read from a sinklab model folder: config.json's
  "sinklab" section and model.safetensors (parsed here: an 8-byte header length, a JSON header,
  raw little-endian float32). Everything else is computed in float64.
- Evaluation as StreamingLLM's examples/eval_long_ppl.py: the text's bytes are the token ids (a
  byte-level model), fed one token per forward; token t's logits give the NLL of token t + 1.
- The cache holds keys *before* RoPE (streaming_llm/pos_shift/modify_llama.py): at every step the
  held keys are rotated at positions arange(kv_len) and the query at its place, kv_len - 1.
- sink:S+W is StartRecentKVCache(start_size=S, recent_size=W) (streaming_llm/kv_cache.py): after
  each forward, when the cache holds more than S + W tokens, keep k[:S] and k[-W:].
  window:W is the same with start_size 0.
- shift:K is llama.cpp's context shift (tools/main/main.cpp): before a token is decoded, if
  n_past + 1 >= n_ctx then n_discard = (n_past - K) // 2 tokens after the first K are removed and
  the rest move down (their positions shift by -n_discard). n_ctx is the model's max_seq_len.
Writes {"policies": {POLICY: [nll, ...]}} to OUT_JSON.
"""
import json
import math
import struct
import sys

try:
    import numpy as np
    import torch
except ImportError as e:  # a declared test dependency: scripts/setup.sh installs python3-torch
    print(f"streaming_llm_reference.py: cannot import {e.name} ({e}); install python3-torch and python3-numpy "
          "(scripts/setup.sh)", file=sys.stderr)
    sys.exit(2)

DTYPE = torch.float64


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {info['dtype']}; this reference reads F32")
        begin, end = info["data_offsets"]
        values = np.frombuffer(data[base + begin:base + end], dtype="<f4").astype(np.float64)
        tensors[name] = torch.tensor(values, dtype=DTYPE).reshape(info["shape"])
    return tensors


class Llama:
    def __init__(self, folder):
        with open(f"{folder}/config.json") as f:
            cfg = json.load(f)["sinklab"]
        if cfg["pe"] != "rope" or cfg["norm"] != "rmsnorm" or cfg["mlp"] != "swiglu" or cfg["linear_bias"]:
            raise SystemExit("streaming_llm_reference.py reads Llama-style models (RoPE, RMSNorm, SwiGLU, no biases)")
        self.cfg = cfg
        self.w = read_safetensors(f"{folder}/model.safetensors")
        self.L, self.NH, self.NKV, self.HS = cfg["layers"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
        self.eps = cfg["norm_eps"]
        half = self.HS // 2
        self.inv_freq = 1.0 / (cfg["rope_theta"] ** (np.arange(half, dtype=np.float64) * 2.0 / self.HS))

    def rmsnorm(self, x, name):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.eps) * self.w[name]

    def rotate(self, x, positions):
        # x (n, heads, HS); HF: angle = position * inv_freq in float32, then cos and sin
        angle = (np.asarray(positions, dtype=np.float32)[:, None] * self.inv_freq.astype(np.float32)[None, :])
        angle = torch.tensor(angle.astype(np.float64), dtype=DTYPE)
        cos = torch.cat([torch.cos(angle), torch.cos(angle)], -1)[:, None, :]
        sin = torch.cat([torch.sin(angle), torch.sin(angle)], -1)[:, None, :]
        half = self.HS // 2
        rotated_half = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rotated_half * sin

    def step(self, token, cache):
        """One token after the held keys (pre-RoPE) and values of each layer; returns its logits and
        appends its key and value. The keys sit at positions 0..n-1, the query at n."""
        x = self.w["embed.tokens"][token][None, :]
        for l in range(self.L):
            p = f"layers.{l}."
            h = self.rmsnorm(x, p + "attn_norm.weight")
            q = (h @ self.w[p + "attn.wq"].T).reshape(1, self.NH, self.HS)
            k = (h @ self.w[p + "attn.wk"].T).reshape(1, self.NKV, self.HS)
            v = (h @ self.w[p + "attn.wv"].T).reshape(1, self.NKV, self.HS)
            keys, values = cache[l]
            keys = torch.cat([keys, k]) if keys is not None else k
            values = torch.cat([values, v]) if values is not None else v
            cache[l] = (keys, values)
            n = keys.shape[0]
            qr = self.rotate(q, [n - 1])
            kr = self.rotate(keys, list(range(n)))
            group = self.NH // self.NKV
            kr = kr.repeat_interleave(group, dim=1)    # (n, NH, HS)
            vv = values.repeat_interleave(group, dim=1)
            scores = torch.einsum("hd,nhd->hn", qr[0], kr) / math.sqrt(self.HS)
            weights = torch.softmax(scores, dim=-1)
            att = torch.einsum("hn,nhd->hd", weights, vv).reshape(1, self.NH * self.HS)
            x = x + att @ self.w[p + "attn.wo"].T
            h = self.rmsnorm(x, p + "mlp_norm.weight")
            gate = h @ self.w[p + "mlp.w_gate"].T
            up = h @ self.w[p + "mlp.w_up"].T
            x = x + (torch.nn.functional.silu(gate) * up) @ self.w[p + "mlp.w_down"].T
        x = self.rmsnorm(x, "final_norm.weight")
        head = self.w["embed.tokens"] if self.cfg["tied_embeddings"] else self.w["lm_head"]
        return (x @ head.T)[0]


def keep_ranks(cache, ranks):
    index = torch.tensor(ranks, dtype=torch.long)
    return [(k[index], v[index]) for k, v in cache]


def stream(model, ids, policy):
    kind, _, arg = policy.partition(":")
    cache = [(None, None)] * model.L
    nll = []
    n_ctx = model.cfg["max_seq_len"]
    for t in range(len(ids) - 1):
        held = 0 if cache[0][0] is None else cache[0][0].shape[0]
        if kind == "shift":  # llama.cpp: before decoding, when n_past + 1 >= n_ctx
            n_keep = int(arg)
            if held + 1 >= n_ctx:
                n_discard = (held - n_keep) // 2
                cache = keep_ranks(cache, list(range(n_keep)) + list(range(n_keep + n_discard, held)))
        logits = model.step(ids[t], cache)
        nll.append(float(torch.logsumexp(logits, 0) - logits[ids[t + 1]]))
        if kind in ("sink", "window"):  # StartRecentKVCache, after each forward
            start, recent = (int(arg.split("+")[0]), int(arg.split("+")[1])) if kind == "sink" else (0, int(arg))
            held = cache[0][0].shape[0]
            if held > start + recent:
                cache = keep_ranks(cache, list(range(start)) + list(range(held - recent, held)))
    return nll


def main():
    if len(sys.argv) < 6:
        raise SystemExit(__doc__)
    folder, text_file, tokens, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with open(text_file, "rb") as f:
        ids = list(f.read()[:tokens + 1])
    if len(ids) < tokens + 1:
        raise SystemExit(f"{text_file}: {len(ids)} bytes, {tokens + 1} needed")
    model = Llama(folder)
    torch.set_grad_enabled(False)
    result = {"policies": {p: stream(model, ids, p) for p in sys.argv[5:]}}
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
