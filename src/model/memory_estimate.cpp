#include "model/memory_estimate.h"

#include <algorithm>

namespace sinklab {

TransformerMemory transformer_memory(const ModelConfig& c, int64_t B, int64_t T, bool training, bool materialised,
                                     int threads) {
    constexpr double kFloat = sizeof(float);
    // Sizes that are not positive are ModelConfig::validate's to refuse.
    for (int64_t size : {int64_t{c.vocab_size}, int64_t{c.d_model}, int64_t{c.n_layers}, int64_t{c.n_heads},
                         int64_t{c.n_kv_heads}, B, T})
        if (size <= 0) return {};
    // Dimensions as doubles: the products below never overflow.
    const double V = c.vocab_size, C = c.d_model, L = c.n_layers, NH = c.n_heads, NKV = c.n_kv_heads;
    const double HS = c.head_dim > 0 ? c.head_dim : (c.n_heads > 0 ? static_cast<double>(c.d_model) / c.n_heads : 0);
    const double F = c.d_ff > 0 ? c.d_ff : (c.gated_mlp() ? 8.0 * C / 3 : 4.0 * C);
    const double up = c.gated_mlp() ? 2 * F : F;
    const double QKV = (NH + 2 * NKV) * HS, HSO = NH * HS;
    const double positions = c.max_seq_len + (c.attention.uses_sink_token() ? 1.0 : 0.0);
    const double Tb = static_cast<double>(T) + (c.attention.uses_sink_token() ? 1 : 0);  // positions the blocks see
    const double N = static_cast<double>(B) * Tb;

    TransformerMemory m;
    const double per_layer_params = C * QKV + HSO * C + C * up + F * C + 4 * C;
    const double params = V * C * (c.tied_embeddings ? 1 : 2) + (c.positions == PositionKind::learned ? positions * C : 0) +
                          L * per_layer_params;
    m.parameters = kFloat * params;
    if (training) m.training = 3 * m.parameters;

    // One slot per layer when training (kept for backward); inference reuses one.
    const double slots = training ? L : 1;
    const double attention_matrix = materialised ? static_cast<double>(B) * NH * Tb * Tb : 0;
    const double per_slot = N * (3 * C + QKV + HSO + up + F) + attention_matrix;
    double floats = slots * per_slot + (slots + 1) * N * C  // the residual stream
                    + (training ? 2 : 1) * N * V;            // logits (and dlogits)
    if (training) {
        floats += N * (4 * C + F + up + HSO + QKV);  // Gradients: one layer's worth
        // The materialised backward's (T, T) dL/dweights per thread (the blockwise one works in tiles).
        if (materialised) floats += static_cast<double>(std::max(threads, 1)) * Tb * Tb;
    }
    m.activations = kFloat * floats;
    return m;
}

}  // namespace sinklab
