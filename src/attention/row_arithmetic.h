#pragma once
// The row arithmetic every attention kernel shares (materialised, blockwise, cached): each design's
// row function n, d, N and their derivatives, the full-row forward and backward of the reference
// kernel, the slot's score and linear_elu's features (docs/attention-designs.md, "One backward for
// every row"). Internal to src/attention/.
#include <algorithm>
#include <cmath>
#include <vector>

#include "attention/attention.h"
#include "attention/score_bias.h"
#include "ops/vector_math.h"

namespace sinklab::attention_rows {

inline constexpr float kNormEps = 1e-8f;  // Gu et al.'s sum + 1e-8 and softpick's epsilon

// ---- Row functions ---------------------------------------------------------------------------
// Every row is w_j = n(s_j) / Z with Z = N(S), S = sum_k d(s_k) over the visible keys and the
// slot; unnormalised designs have Z = 1. Backward, with g = dL/dw (docs/attention-designs.md):
//   dL/ds_j = (n'(s_j) g_j - d'(s_j) N'(S) sum_k w_k g_k) / Z.
// softmax (n = d = e^(s-m), N(S) = S) reduces to w_j (g_j - sum_k w_k g_k) and has its own loops.

struct RowFunction {
    AttentionKind kind;
    bool normalised;
    float bias;  // sigmoid's b
};

inline RowFunction row_function(const AttentionSpec& spec, const AttentionParams& p, int h) {
    const float b = spec.sigmoid_bias_learnable ? p.sigmoid_bias[spec.shared_heads ? 0 : h] : spec.sigmoid_bias;
    return {spec.kind, spec.normalised, b};
}

// n, n', d, d' at score s. `shift` is the row maximum m (softpick's stable form), e_neg = e^-m.
struct RowEntry {
    float n, dn, d, dd;
};

template <AttentionKind K>
inline RowEntry row_entry(float s, float bias, float shift, float e_neg) {
    if constexpr (K == AttentionKind::sigmoid) {  // f = sigmoid(s + b), f' = f (1 - f)
        const float f = sigmoid_fast(s + bias);
        const float df = f * (1.0f - f);
        return {f, df, f, df};
    } else if constexpr (K == AttentionKind::elu1) {  // f = elu(s) + 1
        const float f = s > 0.0f ? s + 1.0f : exp_fast(s);
        const float df = s > 0.0f ? 1.0f : f;
        return {f, df, f, df};
    } else if constexpr (K == AttentionKind::softpick) {
        // a = e^(s-m) - e^-m = e^-m (e^s - 1): n = relu(a), n' = [a > 0] e^(s-m); d = |a|, d' = sign(a) e^(s-m)
        const float e = exp_fast(s - shift);
        const float a = e - e_neg;
        return {a > 0.0f ? a : 0.0f, a > 0.0f ? e : 0.0f, std::abs(a), a > 0.0f ? e : a < 0.0f ? -e : 0.0f};
    } else {
        return {s, 1.0f, s, 1.0f};  // identity; linear_elu (the row holds phi(q).phi(k) * scale)
    }
}

// Z = N(S) and N'(S).
struct Normaliser {
    float Z, dZ;
};

inline Normaliser normaliser(const RowFunction& rf, float S) {
    if (!rf.normalised) return {1.0f, 0.0f};
    if (rf.kind == AttentionKind::identity)  // Z = max(|S|, 1)
        return std::abs(S) > 1.0f ? Normaliser{std::abs(S), S > 0.0f ? 1.0f : -1.0f} : Normaliser{1.0f, 0.0f};
    return {S + kNormEps, 1.0f};
}

// The row maximum over the visible keys and the slot, and where it is (kSlotIndex for the slot):
// softpick's shift m. softpick takes the shift after masking, as the reference does (masked entries
// are -inf).
struct RowMax {
    float value;
    int index;
};
inline constexpr int kSlotIndex = -1;

inline RowMax row_max(const float* s, int lo, int hi, const float* slot) {
    RowMax m{slot ? *slot : -INFINITY, kSlotIndex};
    for (int j = lo; j <= hi; ++j)
        if (s[j] > m.value) m = {s[j], j};
    return m;
}

// The columns of a row that its function sets to zero around the visible keys [lo, hi]: the whole
// row, or only the columns its strip's products read (the rest already holds zeros).
struct Fill {
    int begin, end;
    // zeros over [begin, lo) and (hi, end)
    void zero_around(float* row, int lo, int hi) const {
        for (int j = begin; j < lo; ++j) row[j] = 0.0f;
        for (int j = hi + 1; j < end; ++j) row[j] = 0.0f;
    }
};

// Normalised softmax over the visible keys of one row, in place on `row`, with a slot column of
// score `slot` when kSlot; the entries of `fill` outside [lo, hi] become 0. Max-subtracted, accumulated
// in float. `first_factor` F != 1 (scale-first, AttentionMask::first_key_factor) multiplies key lo's
// e^s by F, that is adds ln F to its score. Returns the slot weight (0 without a slot).
template <bool kSlot>
inline float softmax_row(float* row, Fill fill, int lo, int hi, float slot, float first_factor) {
    if (first_factor != 1.0f) row[lo] += std::log(first_factor);
    float maxv = kSlot ? slot : -INFINITY;
    #pragma omp simd reduction(max : maxv)
    for (int j = lo; j <= hi; ++j) maxv = row[j] > maxv ? row[j] : maxv;
    float sum = 0.0f;
    #pragma omp simd reduction(+ : sum)
    for (int j = lo; j <= hi; ++j) {
        const float e = exp_fast(row[j] - maxv);
        row[j] = e;
        sum += e;
    }
    float slot_e = 0.0f;
    if constexpr (kSlot) {
        slot_e = exp_fast(slot - maxv);
        sum += slot_e;
    }
    const float inv = 1.0f / sum;
    for (int j = lo; j <= hi; ++j) row[j] *= inv;
    fill.zero_around(row, lo, hi);
    return slot_e * inv;
}

// What a row's forward pass leaves besides its weights: the slot weight (0 without a slot) and
// S, the sum the normaliser reads (0 for softmax, whose backward needs only the weights).
struct RowResult {
    float slot_weight = 0.0f;
    float sum = 0.0f;
};

// Any other design's row, in place on `row` (scores in, weights out); one instance per kind, so
// that the loops vectorise. `first_factor` F != 1 multiplies key lo's f(s) by F before the
// normaliser reads it (scale-first; without a normaliser, only its weight changes).
template <AttentionKind K>
inline RowResult generic_row(const RowFunction& rf, float* row, Fill fill, int lo, int hi, const float* slot,
                             float first_factor) {
    const float shift = K == AttentionKind::softpick ? row_max(row, lo, hi, slot).value : 0.0f;
    const float e_neg = std::exp(-shift), bias = rf.bias;
    float S = 0.0f;
    int from = lo;
    if (first_factor != 1.0f) {
        const RowEntry e = row_entry<K>(row[lo], bias, shift, e_neg);
        row[lo] = first_factor * e.n;
        S += first_factor * e.d;
        from = lo + 1;
    }
    #pragma omp simd reduction(+ : S)
    for (int j = from; j <= hi; ++j) {
        const RowEntry e = row_entry<K>(row[j], bias, shift, e_neg);
        row[j] = e.n;
        S += e.d;
    }
    float slot_n = 0.0f;
    if (slot) {
        const RowEntry e = row_entry<K>(*slot, bias, shift, e_neg);
        slot_n = e.n;
        S += e.d;
    }
    const float inv = 1.0f / normaliser(rf, S).Z;
    #pragma omp simd
    for (int j = lo; j <= hi; ++j) row[j] *= inv;
    fill.zero_around(row, lo, hi);
    return {slot_n * inv, S};
}

// One row's forward; `first_factor` is AttentionMask::first_key_factor of the row (1: no edit).
inline RowResult row_forward(const RowFunction& rf, float* row, Fill fill, int lo, int hi, const float* slot,
                             float first_factor) {
    using K = AttentionKind;
    const float f = first_factor;
    switch (rf.kind) {
        case K::softmax:
            return {slot ? softmax_row<true>(row, fill, lo, hi, *slot, f)
                         : softmax_row<false>(row, fill, lo, hi, 0.0f, f),
                    0.0f};
        case K::sigmoid: return generic_row<K::sigmoid>(rf, row, fill, lo, hi, slot, f);
        case K::elu1: return generic_row<K::elu1>(rf, row, fill, lo, hi, slot, f);
        case K::softpick: return generic_row<K::softpick>(rf, row, fill, lo, hi, slot, f);
        case K::identity:
        case K::linear_elu: break;
    }
    return generic_row<K::identity>(rf, row, fill, lo, hi, slot, f);
}

// Backward of a softmax row: g (dL/dw) becomes dL/ds = w (g - sum_k w_k g_k) on the visible keys
// and 0 on the rest of `fill`; the slot has weight ws and dL/dw* = gs. Returns dL/ds*.
template <bool kSlot>
inline float softmax_row_backward(const float* w, float* g, Fill fill, int lo, int hi, float ws, float gs) {
    float dot = 0.0f;
    #pragma omp simd reduction(+ : dot)
    for (int j = lo; j <= hi; ++j) dot += w[j] * g[j];
    if constexpr (kSlot) dot += ws * gs;
    #pragma omp simd
    for (int j = lo; j <= hi; ++j) g[j] = w[j] * (g[j] - dot);
    fill.zero_around(g, lo, hi);
    return ws * (gs - dot);
}

// f' of the designs whose derivative is a function of the value f itself, so that backward needs
// only the saved weights (f = w Z) and the row's sum S, not the scores:
// sigmoid f (1 - f); elu + 1: 1 above 1 (s > 0), f below; identity and the linear kernel: 1.
inline float derivative_from_value(AttentionKind kind, float f) {
    if (kind == AttentionKind::sigmoid) return f * (1.0f - f);
    if (kind == AttentionKind::elu1) return f > 1.0f ? 1.0f : f;
    return 1.0f;
}

// Backward of a row of those designs (n = d, so dL/ds_j = f'_j (g_j - N'(S) sum_k w_k g_k) / Z):
// w the saved weights, S the saved sum (unused when unnormalised); the slot has weight ws and
// dL/dw* = gs. Returns dL/ds*.
inline float value_row_backward(const RowFunction& rf, const float* w, float* g, Fill fill, int lo, int hi, bool slot, float S,
                         float ws, float gs) {
    float dot = ws * gs;
    #pragma omp simd reduction(+ : dot)
    for (int j = lo; j <= hi; ++j) dot += w[j] * g[j];
    const Normaliser nz = normaliser(rf, S);
    const float c = nz.dZ * dot, Z = nz.Z, inv = 1.0f / Z;
    #pragma omp simd
    for (int j = lo; j <= hi; ++j) g[j] = derivative_from_value(rf.kind, w[j] * Z) * (g[j] - c) * inv;
    fill.zero_around(g, lo, hi);
    return slot ? derivative_from_value(rf.kind, ws * Z) * (gs - c) * inv : 0.0f;
}

// Backward of a softpick row from its saved scores s and sum S, in the general form above (its
// weight is 0 wherever e^s < 1, and the gradient there still needs e^s).
inline float softpick_row_backward(const RowFunction& rf, const float* s, const float* w, float* g, Fill fill, int lo, int hi,
                            const float* slot, float ws, float gs, float S) {
    constexpr AttentionKind K = AttentionKind::softpick;
    float dot = ws * gs;
    #pragma omp simd reduction(+ : dot)
    for (int j = lo; j <= hi; ++j) dot += w[j] * g[j];
    fill.zero_around(g, lo, hi);
    const RowMax m = row_max(s, lo, hi, slot);
    const float e_neg = std::exp(-m.value);
    const Normaliser nz = normaliser(rf, S);
    const float c = nz.dZ * dot, inv = 1.0f / nz.Z;
    #pragma omp simd
    for (int j = lo; j <= hi; ++j) {
        const RowEntry e = row_entry<K>(s[j], 0.0f, m.value, e_neg);
        g[j] = (e.dn * g[j] - e.dd * c) * inv;
    }
    float ds_slot = 0.0f;
    if (slot) {
        const RowEntry e = row_entry<K>(*slot, 0.0f, m.value, e_neg);
        ds_slot = (e.dn * gs - e.dd * c) * inv;
    }
    // softpick's epsilon sits in the shifted denominator: Z = sum |e^(s-m) - e^-m| + eps, so
    // w = relu(e^s - 1) / (sum |e^s - 1| + eps e^m) depends on m, hence on the argmax score:
    // dL/dm = -eps / Z sum_k w_k g_k.
    const float dm = -kNormEps * dot * inv;
    if (m.index == kSlotIndex)
        ds_slot += dm;
    else
        g[m.index] += dm;
    return ds_slot;
}

// Backward of one row: g (dL/dw) becomes dL/ds on the visible keys and 0 on the rest of `fill`.
// w are the saved weights, S the saved row sum, s the saved scores (softpick only); the slot (when
// `slot` points at its score) has weight ws and dL/dw* = gs. Returns dL/ds*.
inline float row_backward(const RowFunction& rf, const float* w, float* g, Fill fill, int lo, int hi, const float* slot,
                   float ws, float gs, float S, const float* s) {
    switch (rf.kind) {
        case AttentionKind::softmax:
            return slot ? softmax_row_backward<true>(w, g, fill, lo, hi, ws, gs)
                        : softmax_row_backward<false>(w, g, fill, lo, hi, 0.0f, 0.0f);
        case AttentionKind::softpick: return softpick_row_backward(rf, s, w, g, fill, lo, hi, slot, ws, gs, S);
        default: return value_row_backward(rf, w, g, fill, lo, hi, slot != nullptr, S, ws, gs);
    }
}

// ---- Slots and kernel features ---------------------------------------------------------------

// The slot's score for query q_i of head h: scale q.k* (slots kv, k), 0 (zero), the logit (score).
inline float slot_score(const AttentionSpec& spec, const AttentionParams& p, const float* q_i, int h, int HS, float scale) {
    switch (spec.slot) {
        case SlotKind::kv:
        case SlotKind::k: {
            const float* ks = p.slot_k + static_cast<long>(spec.shared_heads ? 0 : h) * HS;
            float dot = 0.0f;
            for (int e = 0; e < HS; ++e) dot += q_i[e] * ks[e];
            return scale * dot;
        }
        case SlotKind::score: return p.slot_score[h];
        case SlotKind::zero:
        case SlotKind::none: break;
    }
    return 0.0f;
}

// phi(x) = elu(x) + 1 of T rows of HS floats (row stride `stride`) into a packed (T, HS) buffer.
inline void elu1_features(float* phi, const float* x, int T, int HS, long stride) {
    for (int t = 0; t < T; ++t)
        for (int e = 0; e < HS; ++e) {
            const float v = x[t * stride + e];
            phi[static_cast<long>(t) * HS + e] = v > 0.0f ? v + 1.0f : exp_fast(v);
        }
}

// dx += dphi * phi'(x), phi' = 1 for x > 0 and e^x = phi(x) otherwise.
inline void elu1_features_backward(float* dx, const float* dphi, const float* phi, const float* x, int T, int HS,
                            long stride) {
    for (int t = 0; t < T; ++t)
        for (int e = 0; e < HS; ++e) {
            const long p = static_cast<long>(t) * HS + e;
            dx[t * stride + e] += x[t * stride + e] > 0.0f ? dphi[p] : dphi[p] * phi[p];
        }
}

// A backward task's linear_elu buffers: phi(q), phi(k), dL/dphi(q), dL/dphi(k) summed over the
// group, (T, HS) each. Other designs have none: their pointers stay null rather than being offset
// from an empty vector's null data(), which is undefined behaviour (clang's UBSan reports it).
struct FeatureBuffers {
    std::vector<float> storage;
    float* phi_q = nullptr;
    float* phi_k = nullptr;
    float* dphi_q = nullptr;
    float* dphi_k = nullptr;
    FeatureBuffers(bool features, int T, int HS) {
        if (!features) return;
        const long n = static_cast<long>(T) * HS;
        storage.resize(4 * n);
        phi_q = storage.data(), phi_k = phi_q + n, dphi_q = phi_k + n, dphi_k = dphi_q + n;
    }
};

// ---- Parameter gradients -------------------------------------------------------------------

// GradWrite::overwrite: the columns of dqkv (T rows of stride qs, one sequence) that one (batch, kv
// head) task owns, its `group` query heads and its k and v, zeroed by the task itself, in parallel
// and just before use, rather than by the caller.
inline void zero_task_columns(float* dqkv, int T, long qs, int kvh, int group, int NH, int NKV, int HS) {
    for (int t = 0; t < T; ++t) {
        float* row = dqkv + t * qs;
        std::fill_n(row + static_cast<long>(kvh) * group * HS, group * HS, 0.0f);
        std::fill_n(row + static_cast<long>(NH + kvh) * HS, HS, 0.0f);
        std::fill_n(row + static_cast<long>(NH + NKV + kvh) * HS, HS, 0.0f);
    }
}

// The k and v columns of kv head `kvh` in one sequence's qkv rows, and their gradients in dqkv (the
// same layout): what a (batch, kv head) backward task reads and writes.
struct KvHeadColumns {
    const float* k;
    const float* v;
    float* dk;
    float* dv;
};
inline KvHeadColumns kv_head_columns(const float* qkv, float* dqkv, int kvh, int NH, int NKV, int HS) {
    const long k0 = static_cast<long>(NH + kvh) * HS, v0 = static_cast<long>(NH + NKV + kvh) * HS;
    return {qkv + k0, qkv + v0, dqkv + k0, dqkv + v0};
}

// Partial sums of parameter gradients per (batch, head): each (batch, kv head) task writes only its
// own rows, and the sum over batch and heads runs in a fixed order afterwards, so the gradient does
// not depend on the thread schedule. Empty where the design has no such parameter or it is frozen.
struct ParamPartials {
    std::vector<float> slot_k, slot_v;            // (B, NH, HS)
    std::vector<float> slot_score, sigmoid_bias;  // (B, NH)
    std::vector<double> distance_bias;            // (B, NH, 2T - 1) dL/dbias per distance j - i
    int B, NH, HS;

    ParamPartials(const AttentionSpec& spec, const AttentionParamGrads& dp, const ScoreBias& bias, int B_, int NH_,
                  int HS_, long distances)
        : B(B_), NH(NH_), HS(HS_) {
        const size_t bh = static_cast<size_t>(B) * NH;
        if ((spec.slot == SlotKind::kv || spec.slot == SlotKind::k) && dp.slot_k) slot_k.assign(bh * HS, 0.0f);
        if (spec.slot == SlotKind::kv && dp.slot_v) slot_v.assign(bh * HS, 0.0f);
        if (spec.slot == SlotKind::score && dp.slot_score) slot_score.assign(bh, 0.0f);
        if (spec.sigmoid_bias_learnable && dp.sigmoid_bias) sigmoid_bias.assign(bh, 0.0f);
        if (bias.kind == ScoreBiasKind::relative && dp.relative_table) distance_bias.assign(bh * distances, 0.0);
    }

    // dst (H, W) += sum over batch of part (B, NH, W), H = 1 when shared.
    template <typename P>
    void reduce(P* dst, const std::vector<P>& part, int W, bool shared) const {
        for (int h = 0; h < NH; ++h)
            for (int b = 0; b < B; ++b)
                for (int e = 0; e < W; ++e)
                    dst[static_cast<long>(shared ? 0 : h) * W + e] += part[(static_cast<long>(b) * NH + h) * W + e];
    }

    // Adds the sums into dp; the value bias, added to every output row of a head, gets the sum of
    // dout (T rows of stride os per sequence).
    void reduce_into(const AttentionParamGrads& dp, const AttentionSpec& spec, const DistanceBias& bias,
                     const float* dout, int T, long os) const {
        if (!slot_k.empty()) reduce(dp.slot_k, slot_k, HS, spec.shared_heads);
        if (!slot_v.empty()) reduce(dp.slot_v, slot_v, HS, spec.shared_heads);
        if (!slot_score.empty()) reduce(dp.slot_score, slot_score, 1, false);
        if (!sigmoid_bias.empty()) reduce(dp.sigmoid_bias, sigmoid_bias, 1, spec.shared_heads);
        if (!distance_bias.empty()) {
            std::vector<double> distance_grad(static_cast<size_t>(NH) * bias.width(), 0.0);
            reduce(distance_grad.data(), distance_bias, static_cast<int>(bias.width()), false);
            bias.table_gradient(dp.relative_table, distance_grad.data());
        }
        if (spec.value_bias && dp.value_bias)
            for (int h = 0; h < NH; ++h)
                for (long bt = 0; bt < static_cast<long>(B) * T; ++bt)
                    for (int e = 0; e < HS; ++e)
                        dp.value_bias[static_cast<long>(spec.shared_heads ? 0 : h) * HS + e] +=
                            dout[bt * os + static_cast<long>(h) * HS + e];
    }
};

// Logit soft-capping (Gemma 2): u becomes c tanh(u / c); its derivative from the capped value s is
// 1 - (s / c)^2.
inline float soft_cap(float u, float c) { return c * tanh_fast(u / c); }
inline float soft_cap_derivative(float s, float c) {
    const float t = s / c;
    return 1.0f - t * t;
}

}  // namespace sinklab::attention_rows
