#!/usr/bin/env bash
# Memory of a gpt-oss model whose experts stay MXFP4: a folder with gpt-oss-20b's real layer shapes
# (hidden 2880, 64 query and 8 KV heads of 64, 32 experts top-4 of width 2880, vocabulary 201088,
# alternating sliding (128) and full layers, YaRN) but two layers and random weights, made on demand
# by tests/oracle/gpt_oss_reference.py (never committed; kept in FOLDER for reruns, with that
# script's float64 reference for 8 prompt ids and 4 greedy steps). Then, each under /usr/bin/time -v:
#   sinklab probe    (--input random, 2 samples of 64 tokens, every metric)
#   sinklab generate (the reference's 8 prompt ids, 4 greedy tokens through the KV cache)
# Expected resident memory: the MXFP4 expert bytes (blocks + scales, as stored) plus every other
# tensor in float32 (numel x 4), read from the folder's safetensors header. The check passes when
# each command's peak RSS lies within 10% of that. Also prints the generated ids against the
# reference's greedy ids (with the reference's top-2 logit margins, to judge how sharp they are) and
# the projected resident size of the full gpt-oss-20b (24 layers) from the same per-layer sizes.
# usage: bench/gpt_oss_memory.sh [BUILD_DIR] [FOLDER]    (FOLDER default: BUILD_DIR/gpt-oss-20b-2layers)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
folder=${2:-$build/gpt-oss-20b-2layers}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ ! -f "$folder/reference.safetensors" ]]; then
  echo "# making $folder (gpt-oss-20b layer shapes, 2 layers, random weights) and its reference ..." >&2
  cat > "$work/spec.json" <<'JSON'
{"config": {"vocab_size": 201088, "hidden_size": 2880, "num_hidden_layers": 2, "num_attention_heads": 64,
            "num_key_value_heads": 8, "head_dim": 64, "num_local_experts": 32, "num_experts_per_tok": 4,
            "experts_per_token": 4, "intermediate_size": 2880, "sliding_window": 128,
            "layer_types": ["sliding_attention", "full_attention"], "rope_theta": 150000,
            "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                             "original_max_position_embeddings": 4096, "truncate": false},
            "max_position_embeddings": 131072, "initial_context_length": 4096, "swiglu_limit": 7.0,
            "eos_token_id": 200002, "pad_token_id": 199999},
 "seed": 20, "weight_scale": 0.02,
 "input_ids": [200006, 17360, 200008, 3575, 553, 17554, 162016, 11], "greedy_steps": 4}
JSON
  /usr/bin/python3 "$root/tests/oracle/gpt_oss_reference.py" "$work/spec.json" "$folder"
fi

echo "# gpt-oss-20b layer shapes, 2 layers; $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
/usr/bin/time -v "$build/sinklab" probe --model "$folder" --input random --samples 2 --seq-len 64 --quiet \
  --json "$work/probe.json" > "$work/probe.txt" 2> "$work/probe_time.txt"
ids=$(/usr/bin/python3 - "$folder/reference.safetensors" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
meta = json.loads(raw[8:8 + n])["input_ids"]
begin, end = meta["data_offsets"]
data = raw[8 + n + begin:8 + n + end]
print(",".join(str(v) for v in struct.unpack(f"<{len(data) // 8}q", data)))
PY
)
/usr/bin/time -v "$build/sinklab" generate --model "$folder" --prompt-ids "$ids" --max-new-tokens 4 --greedy \
  --ignore-eos --json > "$work/generate.json" 2> "$work/generate_time.txt"

/usr/bin/python3 - "$folder" "$work" <<'PY'
import json, re, struct, sys
folder, work = sys.argv[1], sys.argv[2]

def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))

def tensor(path, name):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    meta = json.loads(raw[8:8 + n])[name]
    begin, end = meta["data_offsets"]
    data = raw[8 + n + begin:8 + n + end]
    fmt = {"I64": "q", "F32": "f"}[meta["dtype"]]
    return list(struct.unpack(f"<{len(data) // struct.calcsize(fmt)}{fmt}", data))

entries = {k: v for k, v in header(f"{folder}/model.safetensors").items() if k != "__metadata__"}
mxfp4 = sum(v["data_offsets"][1] - v["data_offsets"][0] for v in entries.values() if v["dtype"] == "U8")
numel = lambda shape: eval("*".join(map(str, shape)) or "1")
float32 = sum(4 * numel(v["shape"]) for v in entries.values() if v["dtype"] != "U8")
expected = mxfp4 + float32
per_layer = lambda layer: sum((v["data_offsets"][1] - v["data_offsets"][0]) if v["dtype"] == "U8" else 4 * numel(v["shape"])
                              for k, v in entries.items() if k.startswith(f"model.layers.{layer}."))
layer_bytes = (per_layer(0) + per_layer(1)) / 2
shared = expected - per_layer(0) - per_layer(1)
GB = 1e9
print(f"expected resident: MXFP4 experts {mxfp4 / GB:.3f} GB + other tensors as float32 {float32 / GB:.3f} GB "
      f"= {expected / GB:.3f} GB")
ok = True
for name in ("probe", "generate"):
    text = open(f"{work}/{name}_time.txt").read()
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    rss = rss_kb * 1024
    ratio = rss / expected
    ok &= abs(ratio - 1) <= 0.10
    print(f"sinklab {name}: peak RSS {rss / GB:.3f} GB = {ratio:.3f} x expected "
          f"({'within' if abs(ratio - 1) <= 0.10 else 'OUTSIDE'} 10%), wall {wall}")
generated = json.load(open(f"{work}/generate.json"))["generated_ids"]
greedy = tensor(f"{folder}/reference.safetensors", "greedy_ids")
margins = tensor(f"{folder}/reference.safetensors", "top2_margin")
print(f"generated ids {generated}, reference greedy ids {greedy} "
      f"({'equal' if generated == greedy else 'DIFFERENT'}; reference top-2 margins "
      + ", ".join(f"{m:.3g}" for m in margins) + ")")
print(f"projected full gpt-oss-20b (24 layers): {(shared + 24 * layer_bytes) / GB:.2f} GB "
      f"(embeddings and head {shared / GB:.2f} GB as float32, {layer_bytes / GB:.3f} GB per layer of which "
      f"{mxfp4 / 2 / GB:.3f} GB MXFP4 experts)")
sys.exit(0 if ok else 1)
PY
