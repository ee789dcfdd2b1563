#!/usr/bin/env python3
"""Writes the gpt_oss fuzz target's seed: a two-layer gpt-oss folder (one sliding and one full layer,
two MXFP4 experts, top-1 routing) small enough for libFuzzer's -max_len, as one input
(config.json, the file separator, model.safetensors; tests/fuzz/fuzz_support.h).

Same layout as tests/fixtures/gpt_oss (transformers' GptOss checkpoint: MXFP4 expert matrices as
U8 *_blocks (two 4-bit codes a byte, 16 bytes per block of 32 values) and *_scales (one E8M0
exponent per block), everything else BF16), with random values. Only the standard library: the
file is rewritten byte for byte by `python3 tests/fuzz/make_gpt_oss_seed.py OUT`.
"""
import json
import random
import struct
import sys

SEPARATOR = b"\n--sinklab-fuzz-next-file--\n"
HIDDEN, FF, LAYERS, HEADS, KV_HEADS, HEAD_DIM, VOCAB, EXPERTS = 32, 32, 2, 2, 1, 16, 16, 2

config = {
    "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "attention_bias": True,
    "hidden_size": HIDDEN, "intermediate_size": FF, "num_hidden_layers": LAYERS,
    "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS, "head_dim": HEAD_DIM,
    "vocab_size": VOCAB, "num_local_experts": EXPERTS, "num_experts_per_tok": 1, "experts_per_token": 1,
    "layer_types": ["sliding_attention", "full_attention"], "sliding_window": 4,
    "max_position_embeddings": 4096, "initial_context_length": 4096, "rms_norm_eps": 1e-05,
    "rope_theta": 150000, "swiglu_limit": 7.0, "tie_word_embeddings": False, "hidden_act": "silu",
    "eos_token_id": 2, "pad_token_id": 0,
    "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                     "original_max_position_embeddings": 4096, "truncate": False},
    "quantization_config": {"quant_method": "mxfp4",
                            "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                       "model.embed_tokens", "lm_head"]},
}

rng = random.Random(23)


def bf16(shape, scale=0.1, offset=0.0):
    count = 1
    for n in shape:
        count *= n
    values = [offset + rng.uniform(-scale, scale) for _ in range(count)]
    return "BF16", shape, b"".join(struct.pack("<f", v)[2:] for v in values)  # the high half of float32


def u8(shape, low, high):
    count = 1
    for n in shape:
        count *= n
    return "U8", shape, bytes(rng.randint(low, high) for _ in range(count))


tensors = {"model.embed_tokens.weight": bf16([VOCAB, HIDDEN]), "lm_head.weight": bf16([VOCAB, HIDDEN]),
           "model.norm.weight": bf16([HIDDEN], 0.1, 1.0)}
blocks = HIDDEN // 32
for l in range(LAYERS):
    p = f"model.layers.{l}."
    tensors.update({
        p + "input_layernorm.weight": bf16([HIDDEN], 0.1, 1.0),
        p + "post_attention_layernorm.weight": bf16([HIDDEN], 0.1, 1.0),
        p + "self_attn.q_proj.weight": bf16([HEADS * HEAD_DIM, HIDDEN]),
        p + "self_attn.q_proj.bias": bf16([HEADS * HEAD_DIM]),
        p + "self_attn.k_proj.weight": bf16([KV_HEADS * HEAD_DIM, HIDDEN]),
        p + "self_attn.k_proj.bias": bf16([KV_HEADS * HEAD_DIM]),
        p + "self_attn.v_proj.weight": bf16([KV_HEADS * HEAD_DIM, HIDDEN]),
        p + "self_attn.v_proj.bias": bf16([KV_HEADS * HEAD_DIM]),
        p + "self_attn.o_proj.weight": bf16([HIDDEN, HEADS * HEAD_DIM]),
        p + "self_attn.o_proj.bias": bf16([HIDDEN]),
        p + "self_attn.sinks": bf16([HEADS], 1.0),
        p + "mlp.router.weight": bf16([EXPERTS, HIDDEN]),
        p + "mlp.router.bias": bf16([EXPERTS]),
        # scales near 2^0 (E8M0 bias 127), so that the experts' values stay small
        p + "mlp.experts.gate_up_proj_blocks": u8([EXPERTS, 2 * FF, blocks, 16], 0, 255),
        p + "mlp.experts.gate_up_proj_scales": u8([EXPERTS, 2 * FF, blocks], 120, 124),
        p + "mlp.experts.gate_up_proj_bias": bf16([EXPERTS, 2 * FF]),
        p + "mlp.experts.down_proj_blocks": u8([EXPERTS, HIDDEN, FF // 32, 16], 0, 255),
        p + "mlp.experts.down_proj_scales": u8([EXPERTS, HIDDEN, FF // 32], 120, 124),
        p + "mlp.experts.down_proj_bias": bf16([EXPERTS, HIDDEN]),
    })

header, data = {"__metadata__": {"format": "pt"}}, b""
for name in sorted(tensors):
    dtype, shape, raw = tensors[name]
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
header_bytes = json.dumps(header, separators=(",", ":")).encode()
header_bytes += b" " * (-len(header_bytes) % 8)
safetensors = struct.pack("<Q", len(header_bytes)) + header_bytes + data

with open(sys.argv[1], "wb") as out:
    out.write(json.dumps(config, indent=1).encode() + SEPARATOR + safetensors)
