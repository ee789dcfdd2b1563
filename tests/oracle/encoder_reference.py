#!/usr/bin/python3
"""An independent PyTorch reference of the BERT-family encoders, for tests/model/test_encoder_oracle.cpp.

Written from the published conventions, not from sinklab's C++: BERT (Devlin et al. 2019: the sum of
token, segment and learned position embeddings, then LayerNorm; post-norm blocks
LayerNorm(x + Sublayer(x)); exact GELU; the masked-LM head dense -> GELU -> LayerNorm -> decoder tied
to the token embeddings, plus a bias), RoBERTa (Liu et al. 2019, fairseq's make_positions: positions
count the non-padding tokens from padding_idx + 1, padding tokens take padding_idx) and DistilBERT
(Sanh et al. 2019: BERT without token types, every LayerNorm eps 1e-12). The tensor names are those
transformers saves (the checkpoint layout is the interface). Padding: keys beyond each sequence's
length are hidden from every query, as an attention mask hides them. Everything is float64.

Usage:
  encoder_reference.py make-distilbert FOLDER SEED
      writes a tiny random DistilBertForMaskedLM folder (config.json + model.safetensors, float32,
      the tied decoder weight omitted as save_pretrained omits it); weights large enough that
      attention is far from uniform, every bias and norm non-trivial.
  encoder_reference.py forward FOLDER REQUEST OUTPUT
      REQUEST {"ids": [[...]], optional "token_types": [[...]], "lengths": [...], "targets": [[...]]}
      OUTPUT  {"logits" [B,T,V], "attentions" [L,B,H,T,T], "hidden_states" [L+1,B,T,D],
               "head" [B,T,D] (the head's state before the decoder), all flattened, and "loss": the
               mean cross-entropy over targets >= 0 (null without targets)}
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
    print(f"encoder_reference.py: cannot import {e.name}; install python3-torch and python3-numpy", file=sys.stderr)
    sys.exit(2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from probe_reference import read_safetensors  # noqa: E402  (next to this file; float64 tensors)

DTYPE = torch.float64


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        blob = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def make_distilbert(folder, seed):
    rng = np.random.default_rng(seed)
    V, D, L, H, F_, P = 97, 32, 2, 4, 64, 40
    config = {"architectures": ["DistilBertForMaskedLM"], "model_type": "distilbert", "vocab_size": V, "dim": D,
              "n_layers": L, "n_heads": H, "hidden_dim": F_, "max_position_embeddings": P, "activation": "gelu",
              "sinusoidal_pos_embds": False, "tie_weights_": True, "pad_token_id": 0, "initializer_range": 0.02,
              "dropout": 0.1, "attention_dropout": 0.1, "qa_dropout": 0.1, "seq_classif_dropout": 0.2}

    def normal(*shape, std=0.3):
        return rng.normal(0.0, std, size=shape)

    def norm(name, t):
        t[name + ".weight"] = 1.0 + normal(D, std=0.2)
        t[name + ".bias"] = normal(D, std=0.2)

    t = {"distilbert.embeddings.word_embeddings.weight": normal(V, D, std=1.0),
         "distilbert.embeddings.position_embeddings.weight": normal(P, D, std=1.0)}
    norm("distilbert.embeddings.LayerNorm", t)
    for l in range(L):
        pre = f"distilbert.transformer.layer.{l}."
        for lin, shape in (("attention.q_lin", (D, D)), ("attention.k_lin", (D, D)), ("attention.v_lin", (D, D)),
                           ("attention.out_lin", (D, D)), ("ffn.lin1", (F_, D)), ("ffn.lin2", (D, F_))):
            t[pre + lin + ".weight"] = normal(*shape)
            t[pre + lin + ".bias"] = normal(shape[0], std=0.2)
        norm(pre + "sa_layer_norm", t)
        norm(pre + "output_layer_norm", t)
    t["vocab_transform.weight"] = normal(D, D)
    t["vocab_transform.bias"] = normal(D, std=0.2)
    norm("vocab_layer_norm", t)
    t["vocab_projector.bias"] = normal(V, std=0.2)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    write_safetensors(os.path.join(folder, "model.safetensors"), t)


class Encoder:
    """BERT, RoBERTa / XLM-R and DistilBERT under one set of conventions, named per family."""

    def __init__(self, folder):
        with open(os.path.join(folder, "config.json")) as f:
            self.cfg = json.load(f)
        self.t = read_safetensors(os.path.join(folder, "model.safetensors"))
        kind = self.cfg["model_type"]
        if kind == "distilbert":
            self.root, self.layers, self.heads = "distilbert.", self.cfg["n_layers"], self.cfg["n_heads"]
            self.eps = 1e-12
            self.act = self.cfg.get("activation", "gelu")
        elif kind in ("bert", "roberta", "xlm-roberta"):
            self.root = "bert." if kind == "bert" else "roberta."
            self.layers, self.heads = self.cfg["num_hidden_layers"], self.cfg["num_attention_heads"]
            self.eps = self.cfg.get("layer_norm_eps", 1e-12)
            self.act = self.cfg.get("hidden_act", "gelu")
        else:
            raise SystemExit(f"unsupported model_type {kind}")
        self.kind = kind

    def activation(self, x, name):
        if name == "gelu":
            return F.gelu(x)  # exact: x Phi(x)
        if name in ("gelu_new", "gelu_pytorch_tanh"):
            return F.gelu(x, approximate="tanh")
        if name == "relu":
            return F.relu(x)
        raise SystemExit(f"unsupported activation {name}")

    def ln(self, x, name):
        return F.layer_norm(x, (x.shape[-1],), self.t[name + ".weight"], self.t[name + ".bias"], self.eps)

    def linear(self, x, name):
        return F.linear(x, self.t[name + ".weight"], self.t[name + ".bias"])

    def positions(self, ids):
        B, T = ids.shape
        if self.kind in ("roberta", "xlm-roberta"):
            pad = self.cfg.get("pad_token_id", 1)
            counted = (ids != pad).long()
            return torch.cumsum(counted, dim=1) * counted + pad  # fairseq make_positions
        return torch.arange(T)[None, :].expand(B, T)

    def forward(self, ids, types, lengths, hidden_first=0, heads_out=None):
        """hidden_first K: no query after the first K keys sees them (mask-first:K, a sink taken away;
        queries 1..K keep their rows). heads_out: a list that receives each layer's head outputs
        (B, T, D), the heads merged before the attention's output projection."""
        B, T = ids.shape
        r = self.root
        x = F.embedding(ids, self.t[r + "embeddings.word_embeddings.weight"])
        x = x + F.embedding(self.positions(ids), self.t[r + "embeddings.position_embeddings.weight"])
        if self.kind != "distilbert":
            x = x + F.embedding(types, self.t[r + "embeddings.token_type_embeddings.weight"])
        x = self.ln(x, r + "embeddings.LayerNorm")
        hidden, maps = [x], []
        keys = torch.arange(T)[None, :] < lengths[:, None]  # (B, T) real keys
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        unhidden = ~((j < hidden_first) & (i >= hidden_first))  # (T, T)
        visible = keys[:, None, None, :] & unhidden[None, None]
        for l in range(self.layers):
            if self.kind == "distilbert":
                pre = f"{r}transformer.layer.{l}."
                names = ("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "sa_layer_norm",
                         "ffn.lin1", "ffn.lin2", "output_layer_norm")
            else:
                pre = f"{r}encoder.layer.{l}."
                names = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                         "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm")
            D = x.shape[-1]
            HS = D // self.heads

            def heads(t):
                return t.view(B, T, self.heads, HS).transpose(1, 2)

            q, k, v = (heads(self.linear(x, pre + n)) for n in names[:3])
            scores = q @ k.transpose(-1, -2) / math.sqrt(HS)
            scores = scores.masked_fill(~visible, float("-inf"))
            w = torch.softmax(scores, dim=-1)
            maps.append(w)
            attn = (w @ v).transpose(1, 2).reshape(B, T, D)
            if heads_out is not None:
                heads_out.append(attn)
            x = self.ln(x + self.linear(attn, pre + names[3]), pre + names[4])
            x = self.ln(x + self.linear(self.activation(self.linear(x, pre + names[5]), self.act), pre + names[6]),
                        pre + names[7])
            hidden.append(x)
        if self.kind == "distilbert":
            h = self.ln(self.activation(self.linear(x, "vocab_transform"), self.act), "vocab_layer_norm")
            bias = self.t["vocab_projector.bias"]
        elif self.kind == "bert":
            h = self.ln(self.activation(self.linear(x, "cls.predictions.transform.dense"), self.act),
                        "cls.predictions.transform.LayerNorm")
            bias = self.t["cls.predictions.bias"]
        else:  # RobertaLMHead: gelu whatever hidden_act says
            h = self.ln(F.gelu(self.linear(x, "lm_head.dense")), "lm_head.layer_norm")
            bias = self.t["lm_head.bias"]
        logits = F.linear(h, self.t[r + "embeddings.word_embeddings.weight"], bias)  # decoder tied to the embeddings
        return logits, torch.stack(maps), torch.stack(hidden), h


def forward(folder, request_path, output_path):
    with open(request_path) as f:
        req = json.load(f)
    ids = torch.tensor(req["ids"], dtype=torch.long)
    B, T = ids.shape
    types = torch.tensor(req["token_types"], dtype=torch.long) if "token_types" in req else torch.zeros_like(ids)
    lengths = torch.tensor(req.get("lengths", [T] * B), dtype=torch.long)
    logits, maps, hidden, head = Encoder(folder).forward(ids, types, lengths)
    out = {"logits": logits.reshape(-1).tolist(), "attentions": maps.reshape(-1).tolist(),
           "hidden_states": hidden.reshape(-1).tolist(), "head": head.reshape(-1).tolist(), "loss": None}
    if "targets" in req:
        targets = torch.tensor(req["targets"], dtype=torch.long)
        targets[targets < 0] = -100
        out["loss"] = float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                            ignore_index=-100))
    with open(output_path, "w") as f:
        json.dump(out, f)


def main(argv):
    torch.set_num_threads(1)
    if len(argv) == 4 and argv[1] == "make-distilbert":
        make_distilbert(argv[2], int(argv[3]))
    elif len(argv) == 5 and argv[1] == "forward":
        forward(argv[2], argv[3], argv[4])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
