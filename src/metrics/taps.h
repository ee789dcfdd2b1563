#pragma once
// The named capture points of a forward (llama.cpp's cb(tensor, name, layer)): every intermediate a
// tool may read passes through TensorObserver (model/transformer.h) under one of these names, and
// every statistic of metrics/ is computed from them. N = B*T rows; T counts the positions the blocks
// see. Layer -1 for the taps outside the blocks.
//
// sink_token: the model runs T + 1 positions per sequence, the learnable sink token first (at
// position 0, the real tokens at 1..T). Every tap up to block_out shows all T + 1, so the sink token
// is key column 0 of attn_weights (B, NH, T+1, T+1) and row 0 of each sequence in embed, qkv and
// block_out (B*(T+1), C): probes read it as position 1, the first token, as Gu et al. do for a
// prepended sink. final_norm, logits and the loss cover the T real tokens.
// A forward_step of n tokens over a KV cache holding K tokens after it taps the same names with
// B*T = n, and attn_weights (1, NH, n, K).
#include <string_view>

namespace sinklab {

enum class Tap {
    embed,              // (B*T, C) token (and absolute position) embeddings, after an encoder's embedding norm; layer -1
    qkv,                // (B*T, QKV) queries, keys and values after the q/k norms and RoPE
    // (B, NH, T) the weight of the slot column, by the designs with a slot (kv_bias, k_bias,
    // softmax1, score_bias), tapped just before the same layer's attn_weights (SlotWeightsTap)
    attn_slot_weights,
    attn_weights,       // (B, NH, T, T) materialised path: row i holds query i's weights over the keys
    attn_column_sums,   // (B, NH, T) blockwise path: sum over queries i of w_ij, the weight key j receives
    attn_row_entropy,   // (B, NH, T) blockwise path: -sum_j w_ij ln w_ij of query row i, in nats
    // (B*T, NH*HS) each head's output as the output projection reads it: sum_j w_ij v_j (with the
    // slot's value and the value bias of the designs that have them), after the gate of gated designs
    attn_out,
    // (B*T, E) and (B*T, E) a mixture-of-experts MLP's router logits and each expert's weight for
    // each token (the softmax over the chosen experts' logits, 0 for the others)
    router_logits,
    router_weights,
    block_out,          // (B*T, C) a block's output, the residual stream (TensorObserver::intervene edits it)
    // (B*T, C) the final norm's output; layer -1. With a masked-LM head (head_transform) the final
    // norm is the head's LayerNorm: the head's state just before the vocabulary projection.
    final_norm,
    logits,             // (B*T, V); layer -1
};

// The tap's name as written above ("attn_weights"), for messages and test output.
std::string_view tap_name(Tap tap);

}  // namespace sinklab
