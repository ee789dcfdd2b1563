"""Independent oracle for test_llama2c.cpp: greedy decoding of stories260K.bin the way llama2.c's
run.c does it (interleaved-pair RoPE on the raw, unpermuted wq/wk), in PyTorch float32.

Prints the greedy ids from BOS and their text (decoded with tok512.bin), which must begin
"Once upon a time, there was a little girl named Lily." as the fixture README says. The ids are
pasted into test_llama2c.cpp, whose forward uses sinklab's loaded (permuted, Hugging Face
rotate_half) weights instead.

Run: /usr/bin/python3 tests/io/llama2c_greedy_oracle.py tests/fixtures/llama2c/stories260K.bin \
         ../shared/fixtures/llama2c/tok512.bin
"""
import struct
import sys

import torch


def load(path):
    raw = open(path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = struct.unpack("<7i", raw[:28])
    assert vocab > 0, "this oracle handles shared classifiers only"
    floats = torch.frombuffer(bytearray(raw[28:]), dtype=torch.float32)
    head_size = dim // n_heads
    kv_dim = n_kv_heads * head_size
    sizes = [("emb", (vocab, dim)), ("rms_att", (n_layers, dim)), ("wq", (n_layers, dim, dim)),
             ("wk", (n_layers, kv_dim, dim)), ("wv", (n_layers, kv_dim, dim)), ("wo", (n_layers, dim, dim)),
             ("rms_ffn", (n_layers, dim)), ("w1", (n_layers, hidden, dim)), ("w2", (n_layers, dim, hidden)),
             ("w3", (n_layers, hidden, dim)), ("rms_final", (dim,))]
    w, offset = {}, 0
    for name, shape in sizes:
        n = 1
        for s in shape:
            n *= s
        w[name] = floats[offset:offset + n].reshape(shape)
        offset += n
    assert offset + seq_len * head_size == floats.numel()
    return (dim, n_layers, n_heads, n_kv_heads, head_size), w


def rmsnorm(x, weight):
    return weight * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-5))


def rope_interleaved(x, positions, head_size):
    # run.c: for each consecutive pair (i, i+1), freq = 10000^(-(i % head_size) / head_size)
    pairs = x.reshape(x.shape[0], -1, 2)
    i = torch.arange(0, x.shape[1], 2) % head_size
    angle = positions[:, None].float() * (1.0 / 10000.0 ** (i.float() / head_size))[None, :]
    cos, sin = torch.cos(angle), torch.sin(angle)
    a, b = pairs[..., 0], pairs[..., 1]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).reshape(x.shape)


def logits_of(tokens, dims, w):
    dim, n_layers, n_heads, n_kv_heads, hs = dims
    T = len(tokens)
    positions = torch.arange(T)
    x = w["emb"][torch.tensor(tokens)]
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(n_layers):
        h = rmsnorm(x, w["rms_att"][l])
        q = rope_interleaved(h @ w["wq"][l].T, positions, hs).reshape(T, n_heads, hs)
        k = rope_interleaved(h @ w["wk"][l].T, positions, hs).reshape(T, n_kv_heads, hs)
        v = (h @ w["wv"][l].T).reshape(T, n_kv_heads, hs)
        group = n_heads // n_kv_heads
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        scores = torch.einsum("thd,shd->hts", q, k) / hs ** 0.5 + mask
        out = torch.einsum("hts,shd->thd", scores.softmax(-1), v).reshape(T, dim)
        x = x + out @ w["wo"][l].T
        h = rmsnorm(x, w["rms_ffn"][l])
        x = x + (torch.nn.functional.silu(h @ w["w1"][l].T) * (h @ w["w3"][l].T)) @ w["w2"][l].T
    return rmsnorm(x, w["rms_final"]) @ w["emb"].T


def decode(ids, tokenizer_path, vocab):
    raw = open(tokenizer_path, "rb").read()
    offset, pieces = 4, []
    for _ in range(vocab):
        _score, length = struct.unpack_from("<fi", raw, offset)
        pieces.append(raw[offset + 8:offset + 8 + length].decode("utf-8", "replace"))
        offset += 8 + length
    return "".join(pieces[i] for i in ids).lstrip()


def main():
    dims, w = load(sys.argv[1])
    tokens, margins = [1], []
    with torch.no_grad():
        for _ in range(40):
            logits = logits_of(tokens, dims, w)[-1]
            top2 = logits.topk(2).values
            margins.append(float(top2[0] - top2[1]))
            tokens.append(int(logits.argmax()))
    print("greedy ids:", tokens[1:])
    print("smallest top-2 logit margin:", min(margins))
    print("text:", decode(tokens[1:], sys.argv[2], w["emb"].shape[0]))


if __name__ == "__main__":
    main()
