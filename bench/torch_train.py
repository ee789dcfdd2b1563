#!/usr/bin/python3
"""The same models as sinklab's presets, trained by PyTorch (Debian's python3-torch) on the same
byte corpus, for bench/train_throughput.sh. Prints one JSON line.

usage: torch_train.py PRESET STEPS WARMUP_STEPS [--threads N] [--data DIR] [--parity] [--seq-len T] [--batch B]
  The learning rate follows sinklab's schedule (linear warmup over 50 steps, then cosine to min-lr),
  as the sinklab side of each benchmark does: over 1000 steps, as bench/training_steps.h does for
  the throughput runs, so that both engines' losses after the same steps can be compared.
  --parity: the schedule ends at STEPS + WARMUP_STEPS instead, as `sinklab train --steps` does, and
  at the end comes the validation loss over every non-overlapping seq-len window of the last 5% of
  the bytes, as `sinklab train` computes it (bench/train_parity.sh compares the two).
  --seq-len, --batch: the preset at another T (its learned positions grow with it) and batch
  (bench/train_long.sh).
"""
import argparse, glob, json, math, os, time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    "tiny": dict(d=128, layers=4, heads=4, seq=256, batch=16, lr=1e-3, min_lr=1e-4),
    "small": dict(d=384, layers=6, heads=6, seq=256, batch=8, lr=6e-4, min_lr=6e-5),
}


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.up = nn.Linear(d, 4 * d)
        self.down = nn.Linear(4 * d, d)

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.heads)
        att = att.masked_fill(mask[:T, :T], float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.proj(y)
        return x + self.down(F.gelu(self.up(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, d, layers, heads, seq, vocab=256):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.register_buffer("mask", torch.triu(torch.ones(seq, seq, dtype=torch.bool), 1))
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(("proj.weight", "down.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.blocks:
            x = b(x, self.mask)
        logits = self.head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("preset")
    ap.add_argument("steps", type=int)
    ap.add_argument("warmup_steps", type=int)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "sotu"))
    ap.add_argument("--parity", action="store_true")
    ap.add_argument("--seq-len", type=int, default=0, help="T (0: the preset's)")
    ap.add_argument("--batch", type=int, default=0, help="batch (0: the preset's)")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    cfg = dict(PRESETS[a.preset])
    if a.seq_len > 0:
        cfg["seq"] = a.seq_len
    if a.batch > 0:
        cfg["batch"] = a.batch
    data = b"".join(open(f, "rb").read() for f in sorted(glob.glob(os.path.join(a.data, "*.txt"))))
    n_val = int(len(data) * 0.05)
    train = torch.frombuffer(bytearray(data[: len(data) - n_val]), dtype=torch.uint8).long()
    val = torch.frombuffer(bytearray(data[len(data) - n_val :]), dtype=torch.uint8).long()
    torch.manual_seed(1337)
    model = GPT(cfg["d"], cfg["layers"], cfg["heads"], cfg["seq"])
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and not n.startswith(("wte", "wpe"))]
    other = [p for n, p in model.named_parameters() if not (p.dim() == 2 and not n.startswith(("wte", "wpe")))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=cfg["lr"], betas=(0.9, 0.95), eps=1e-8)
    B, T = cfg["batch"], cfg["seq"]

    def lr_at(step):  # sinklab's learning_rate_at, step counted from 1
        warmup, total = 50, a.steps + a.warmup_steps if a.parity else 1000
        if step <= warmup:
            return cfg["lr"] * step / warmup
        if step >= total:
            return cfg["min_lr"]
        progress = (step - warmup) / (total - warmup)
        return cfg["min_lr"] + (cfg["lr"] - cfg["min_lr"]) * 0.5 * (1 + math.cos(math.pi * progress))

    counter = [0]

    def step():
        counter[0] += 1
        for g in opt.param_groups:
            g["lr"] = lr_at(counter[0])
        ix = torch.randint(len(train) - T - 1, (B,))
        x = torch.stack([train[i : i + T] for i in ix])
        y = torch.stack([train[i + 1 : i + T + 1] for i in ix])
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(a.warmup_steps):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    secs = time.perf_counter() - t0
    result = {}
    if a.parity:
        model.eval()
        windows = (len(val) - 1) // T
        total, count = 0.0, 0
        with torch.no_grad():
            for i in range(0, windows, B):
                ix = range(i * T, min(windows, i + B) * T, T)
                x = torch.stack([val[j : j + T] for j in ix])
                y = torch.stack([val[j + 1 : j + T + 1] for j in ix])
                total += model(x, y).item() * x.numel()
                count += x.numel()
        result = {"val_loss": total / count, "val_windows": windows}
    print(json.dumps({**result, "engine": "pytorch", "torch": torch.__version__, "preset": a.preset,
                      "threads": torch.get_num_threads(), "steps": a.steps, "seq_len": T, "batch": B,
                      "tokens_per_s": a.steps * B * T / secs, "loss": loss}))


if __name__ == "__main__":
    main()
