#include "attention/attention.h"

#include <cblas.h>

#include <cmath>
#include <cstring>
#include <vector>

#include <omp.h>

#include "core/error.h"
#include "core/rng.h"
#include "ops/vector_math.h"

namespace sinklab {

float attention_scale(const AttentionSpec& spec, int HS) {
    return spec.scale > 0.0f ? spec.scale : 1.0f / std::sqrt(static_cast<float>(HS));
}

float default_sigmoid_bias(int context) {
    SINKLAB_CHECK(context > 0, "attention", "the sigmoid bias -ln(T) needs a positive context length, got {}", context);
    return -std::log(static_cast<float>(context));
}

std::vector<AttentionParamInfo> attention_param_infos(const AttentionSpec& spec, int NH, int HS) {
    using I = AttentionParamInit;
    const int H = spec.shared_heads ? 1 : NH;
    std::vector<AttentionParamInfo> infos;
    if (spec.slot == SlotKind::kv || spec.slot == SlotKind::k)
        infos.push_back({"slot_k", {H, HS}, I::slot_normal, &AttentionParams::slot_k, &AttentionParamGrads::slot_k});
    if (spec.slot == SlotKind::kv)
        infos.push_back({"slot_v", {H, HS}, I::slot_normal, &AttentionParams::slot_v, &AttentionParamGrads::slot_v});
    if (spec.slot == SlotKind::score)
        infos.push_back(
            {"slot_score", {NH}, I::model_normal, &AttentionParams::slot_score, &AttentionParamGrads::slot_score});
    if (spec.sigmoid_bias_learnable)
        infos.push_back({"sigmoid_bias", {H}, I::neg_log_context, &AttentionParams::sigmoid_bias,
                         &AttentionParamGrads::sigmoid_bias});
    if (spec.value_bias)
        infos.push_back(
            {"value_bias", {H, HS}, I::slot_normal, &AttentionParams::value_bias, &AttentionParamGrads::value_bias});
    return infos;
}

void init_attention_param(float* data, const AttentionParamInfo& info, Rng& rng, float init_std, int context) {
    long n = 1;
    for (int s : info.shape) n *= s;
    switch (info.init) {
        case AttentionParamInit::slot_normal:
            for (long i = 0; i < n; ++i) data[i] = static_cast<float>(rng.normal() * kSlotInitStd);
            break;
        case AttentionParamInit::model_normal:
            for (long i = 0; i < n; ++i) data[i] = static_cast<float>(rng.normal() * init_std);
            break;
        case AttentionParamInit::neg_log_context:
            for (long i = 0; i < n; ++i) data[i] = default_sigmoid_bias(context);
            break;
    }
}

namespace {

constexpr float kNormEps = 1e-8f;  // Gu et al.'s sum + 1e-8 and softpick's epsilon

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

RowFunction row_function(const AttentionSpec& spec, const AttentionParams& p, int h) {
    const float b = spec.sigmoid_bias_learnable ? p.sigmoid_bias[spec.shared_heads ? 0 : h] : spec.sigmoid_bias;
    return {spec.kind, spec.normalised, b};
}

// n, n', d, d' at score s. `shift` is the row maximum m (softpick's stable form), e_neg = e^-m.
struct RowEntry {
    float n, dn, d, dd;
};

RowEntry row_entry(const RowFunction& rf, float s, float shift, float e_neg) {
    if (rf.kind == AttentionKind::sigmoid) {  // f = sigmoid(s + b), f' = f (1 - f)
        const float f = sigmoid_fast(s + rf.bias);
        const float df = f * (1.0f - f);
        return {f, df, f, df};
    }
    if (rf.kind == AttentionKind::elu1) {  // f = elu(s) + 1
        const float f = s > 0.0f ? s + 1.0f : exp_fast(s);
        const float df = s > 0.0f ? 1.0f : f;
        return {f, df, f, df};
    }
    if (rf.kind == AttentionKind::softpick) {
        // a = e^(s-m) - e^-m = e^-m (e^s - 1): n = relu(a), n' = [a > 0] e^(s-m); d = |a|, d' = sign(a) e^(s-m)
        const float e = exp_fast(s - shift);
        const float a = e - e_neg;
        return {a > 0.0f ? a : 0.0f, a > 0.0f ? e : 0.0f, std::abs(a), a > 0.0f ? e : a < 0.0f ? -e : 0.0f};
    }
    return {s, 1.0f, s, 1.0f};  // identity; linear_elu (the row holds phi(q).phi(k) * scale)
}

// Z = N(S) and N'(S).
struct Normaliser {
    float Z, dZ;
};

Normaliser normaliser(const RowFunction& rf, float S) {
    if (!rf.normalised) return {1.0f, 0.0f};
    if (rf.kind == AttentionKind::identity)  // Z = max(|S|, 1)
        return std::abs(S) > 1.0f ? Normaliser{std::abs(S), S > 0.0f ? 1.0f : -1.0f} : Normaliser{1.0f, 0.0f};
    return {S + kNormEps, 1.0f};
}

// The row maximum over the visible keys and the slot, and where it is (T for the slot): softpick's
// shift m. softpick takes the shift after masking, as the reference does (masked entries are -inf).
struct RowMax {
    float value;
    int index;
};

RowMax row_max(const float* s, int T, int lo, int hi, const float* slot) {
    RowMax m{slot ? *slot : -INFINITY, T};
    for (int j = lo; j <= hi; ++j)
        if (s[j] > m.value) m = {s[j], j};
    return m;
}

// Normalised softmax over the visible keys of one row, in place on `row` (length T), with a slot
// column of score `slot` when kSlot; entries outside [lo, hi] become 0. Max-subtracted, accumulated
// in float. Returns the slot weight (0 without a slot).
template <bool kSlot>
float softmax_row(float* row, int T, int lo, int hi, float slot) {
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
    for (int j = 0; j < lo; ++j) row[j] = 0.0f;
    for (int j = lo; j <= hi; ++j) row[j] *= inv;
    for (int j = hi + 1; j < T; ++j) row[j] = 0.0f;
    return slot_e * inv;
}

// Any other design's row, in place on `row` (scores in, weights out); returns the slot weight.
float generic_row(const RowFunction& rf, float* row, int T, int lo, int hi, const float* slot) {
    const float shift = rf.kind == AttentionKind::softpick ? row_max(row, T, lo, hi, slot).value : 0.0f;
    const float e_neg = std::exp(-shift);
    float S = 0.0f;
    #pragma omp simd reduction(+ : S)
    for (int j = lo; j <= hi; ++j) {
        const RowEntry e = row_entry(rf, row[j], shift, e_neg);
        row[j] = e.n;
        S += e.d;
    }
    float slot_n = 0.0f;
    if (slot) {
        const RowEntry e = row_entry(rf, *slot, shift, e_neg);
        slot_n = e.n;
        S += e.d;
    }
    const float inv = 1.0f / normaliser(rf, S).Z;
    for (int j = 0; j < lo; ++j) row[j] = 0.0f;
    for (int j = lo; j <= hi; ++j) row[j] *= inv;
    for (int j = hi + 1; j < T; ++j) row[j] = 0.0f;
    return slot_n * inv;
}

float row_forward(const RowFunction& rf, float* row, int T, int lo, int hi, const float* slot) {
    if (rf.kind != AttentionKind::softmax) return generic_row(rf, row, T, lo, hi, slot);
    return slot ? softmax_row<true>(row, T, lo, hi, *slot) : softmax_row<false>(row, T, lo, hi, 0.0f);
}

// Backward of a softmax row: g (dL/dw, length T) becomes dL/ds = w (g - sum_k w_k g_k) on the
// visible keys and 0 elsewhere; the slot has weight ws and dL/dw* = gs. Returns dL/ds*.
template <bool kSlot>
float softmax_row_backward(const float* w, float* g, int T, int lo, int hi, float ws, float gs) {
    float dot = 0.0f;
    #pragma omp simd reduction(+ : dot)
    for (int j = lo; j <= hi; ++j) dot += w[j] * g[j];
    if constexpr (kSlot) dot += ws * gs;
    for (int j = 0; j < lo; ++j) g[j] = 0.0f;
    #pragma omp simd
    for (int j = lo; j <= hi; ++j) g[j] = w[j] * (g[j] - dot);
    for (int j = hi + 1; j < T; ++j) g[j] = 0.0f;
    return ws * (gs - dot);
}

// Backward of any other design's row, in the general form above; s are the recomputed scores.
float generic_row_backward(const RowFunction& rf, const float* s, const float* w, float* g, int T, int lo, int hi,
                           const float* slot, float ws, float gs) {
    float dot = ws * gs;
    #pragma omp simd reduction(+ : dot)
    for (int j = lo; j <= hi; ++j) dot += w[j] * g[j];
    for (int j = 0; j < lo; ++j) g[j] = 0.0f;
    for (int j = hi + 1; j < T; ++j) g[j] = 0.0f;
    const RowMax m = rf.kind == AttentionKind::softpick ? row_max(s, T, lo, hi, slot) : RowMax{0.0f, -1};
    const float e_neg = std::exp(-m.value);
    float S = 0.0f;
    if (rf.normalised) {
        #pragma omp simd reduction(+ : S)
        for (int j = lo; j <= hi; ++j) S += row_entry(rf, s[j], m.value, e_neg).d;
        if (slot) S += row_entry(rf, *slot, m.value, e_neg).d;
    }
    const Normaliser nz = normaliser(rf, S);
    const float c = nz.dZ * dot, inv = 1.0f / nz.Z;
    #pragma omp simd
    for (int j = lo; j <= hi; ++j) {
        const RowEntry e = row_entry(rf, s[j], m.value, e_neg);
        g[j] = (e.dn * g[j] - e.dd * c) * inv;
    }
    float ds_slot = 0.0f;
    if (slot) {
        const RowEntry e = row_entry(rf, *slot, m.value, e_neg);
        ds_slot = (e.dn * gs - e.dd * c) * inv;
    }
    if (rf.kind == AttentionKind::softpick) {
        // softpick's epsilon sits in the shifted denominator: Z = sum |e^(s-m) - e^-m| + eps, so
        // w = relu(e^s - 1) / (sum |e^s - 1| + eps e^m) depends on m, hence on the argmax score:
        // dL/dm = -eps / Z sum_k w_k g_k.
        const float dm = -kNormEps * dot * inv;
        if (m.index == T)
            ds_slot += dm;
        else
            g[m.index] += dm;
    }
    return ds_slot;
}

// Backward of one row: g (dL/dw, length T) becomes dL/ds on the visible keys and 0 elsewhere.
// w are the saved weights, s the recomputed scores (unused by softmax); the slot (when `slot`
// points at its score) has weight ws and dL/dw* = gs. Returns dL/ds*.
float row_backward(const RowFunction& rf, const float* s, const float* w, float* g, int T, int lo, int hi,
                   const float* slot, float ws, float gs) {
    if (rf.kind != AttentionKind::softmax) return generic_row_backward(rf, s, w, g, T, lo, hi, slot, ws, gs);
    return slot ? softmax_row_backward<true>(w, g, T, lo, hi, ws, gs)
                : softmax_row_backward<false>(w, g, T, lo, hi, 0.0f, 0.0f);
}

// ---- Slots and kernel features ---------------------------------------------------------------

// The slot's score for query q_i of head h: scale q.k* (slots kv, k), 0 (zero), the logit (score).
float slot_score(const AttentionSpec& spec, const AttentionParams& p, const float* q_i, int h, int HS, float scale) {
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
void elu1_features(float* phi, const float* x, int T, int HS, long stride) {
    for (int t = 0; t < T; ++t)
        for (int e = 0; e < HS; ++e) {
            const float v = x[t * stride + e];
            phi[static_cast<long>(t) * HS + e] = v > 0.0f ? v + 1.0f : exp_fast(v);
        }
}

// dx += dphi * phi'(x), phi' = 1 for x > 0 and e^x = phi(x) otherwise.
void elu1_features_backward(float* dx, const float* dphi, const float* phi, const float* x, int T, int HS,
                            long stride) {
    for (int t = 0; t < T; ++t)
        for (int e = 0; e < HS; ++e) {
            const long p = static_cast<long>(t) * HS + e;
            dx[t * stride + e] += x[t * stride + e] > 0.0f ? dphi[p] : dphi[p] * phi[p];
        }
}

// Scores of head h against its kv head, (T, T) into s: scale q k^T, or scale phi(q) phi(k)^T for
// linear_elu (phi_q, phi_k then hold the features), plus the additive score bias.
void head_scores(float* s, const float* q, const float* k, float* phi_q, float* phi_k, const float* bias,
                 const AttentionSpec& spec, int T, int HS, long qs, float scale, const AttentionMask& mask) {
    if (spec.kind == AttentionKind::linear_elu) {
        elu1_features(phi_q, q, T, HS, qs);
        elu1_features(phi_k, k, T, HS, qs);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, scale, phi_q, HS, phi_k, HS, 0.0f, s, T);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, scale, q, qs, k, qs, 0.0f, s, T);
    }
    if (!bias) return;
    for (int i = 0; i < T; ++i) {
        const long r = static_cast<long>(i) * T;
        for (int j = mask.lo(i); j <= mask.hi(i, T); ++j) s[r + j] += bias[r + j];
    }
}

void check_call(const float* weights, bool has_slot_weights, const AttentionInputs& in, const AttentionParams& p,
                const AttentionDims& d, const AttentionSpec& spec) {
    spec.validate();
    SINKLAB_CHECK(d.NKV > 0 && d.NH % d.NKV == 0, "attention", "{} query heads cannot share {} kv heads", d.NH, d.NKV);
    SINKLAB_CHECK(in.qkv && weights, "attention", "the kernel needs qkv and a weights buffer (B, NH, T, T)");
    SINKLAB_CHECK(!spec.has_slot() || has_slot_weights, "attention",
                  "this attention design has a slot column: pass slot_weights (B, NH, T)");
    SINKLAB_CHECK(spec.has_slot() || !has_slot_weights, "attention",
                  "slot_weights given to an attention design without a slot column");
    for (const AttentionParamInfo& info : attention_param_infos(spec, d.NH, d.HS))
        SINKLAB_CHECK(p.*info.value, "attention", "this attention design needs its parameter {} in AttentionParams",
                      info.name);
    SINKLAB_CHECK(spec.kind != AttentionKind::linear_elu || !in.score_bias, "attention",
                  "linear_elu is a kernel design: an additive score bias (ALiBi, relative) does not apply");
}

// Partial sums of parameter gradients per (batch, head): each (batch, kv head) task writes only its
// own rows, and the sum over batch and heads runs in a fixed order afterwards, so the gradient does
// not depend on the thread schedule.
struct ParamPartials {
    std::vector<float> slot_k, slot_v;            // (B, NH, HS)
    std::vector<float> slot_score, sigmoid_bias;  // (B, NH)
    std::vector<float> score_bias;                // (B, NH, T, T)
};

// dst (H, W) += sum over batch of part (B, NH, W), H = 1 when shared.
void reduce_partials(float* dst, const std::vector<float>& part, int B, int NH, int W, bool shared) {
    for (int h = 0; h < NH; ++h)
        for (int b = 0; b < B; ++b)
            for (int e = 0; e < W; ++e)
                dst[static_cast<long>(shared ? 0 : h) * W + e] += part[(static_cast<long>(b) * NH + h) * W + e];
}

}  // namespace

void attention_forward(float* out, float* weights, float* slot_weights, const AttentionInputs& in,
                       const AttentionParams& p, const AttentionDims& d, const AttentionSpec& spec,
                       const AttentionMask& mask) {
    check_call(weights, slot_weights != nullptr, in, p, d, spec);
    const int T = d.T, HS = d.HS, group = d.NH / d.NKV;
    const long qs = d.qkv_stride(), os = d.out_stride();
    const float scale = attention_scale(spec, HS);
    const bool features = spec.kind == AttentionKind::linear_elu;
    #pragma omp parallel
    {
        std::vector<float> phi(features ? 2L * T * HS : 0);  // linear_elu: phi(q), phi(k) (T, HS) each
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < d.B; ++b) {
            for (int h = 0; h < d.NH; ++h) {
                const int kvh = h / group;
                const float* q = in.qkv + static_cast<long>(b) * T * qs + static_cast<long>(h) * HS;
                const float* k = in.qkv + static_cast<long>(b) * T * qs + static_cast<long>(d.NH + kvh) * HS;
                const float* v = in.qkv + static_cast<long>(b) * T * qs + static_cast<long>(d.NH + d.NKV + kvh) * HS;
                float* w = weights + (static_cast<long>(b) * d.NH + h) * T * T;  // (T, T)
                float* ws = slot_weights ? slot_weights + (static_cast<long>(b) * d.NH + h) * T : nullptr;  // (T)
                const float* bias = in.score_bias ? in.score_bias + static_cast<long>(h) * T * T : nullptr;
                // scores: w = scale q k^T, or scale phi(q) phi(k)^T for linear_elu, + bias   (T, T)
                head_scores(w, q, k, phi.data(), phi.data() + static_cast<long>(T) * HS, bias, spec, T, HS, qs, scale,
                            mask);
                const RowFunction rf = row_function(spec, p, h);
                for (int i = 0; i < T; ++i) {
                    float* row = w + static_cast<long>(i) * T;
                    const int lo = mask.lo(i), hi = mask.hi(i, T);
                    if (ws) {
                        const float s_slot = slot_score(spec, p, q + i * qs, h, HS, scale);
                        ws[i] = row_forward(rf, row, T, lo, hi, &s_slot);
                    } else {
                        row_forward(rf, row, T, lo, hi, nullptr);
                    }
                }
                // out_h = w v (+ w* v*) (+ value bias)   (T, HS)
                float* o = out + static_cast<long>(b) * T * os + static_cast<long>(h) * HS;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, w, T, v, qs, 0.0f, o, os);
                const int hp = spec.shared_heads ? 0 : h;
                if (spec.slot == SlotKind::kv) {
                    const float* vs = p.slot_v + static_cast<long>(hp) * HS;
                    for (int i = 0; i < T; ++i)
                        for (int e = 0; e < HS; ++e) o[i * os + e] += ws[i] * vs[e];
                }
                if (spec.value_bias) {
                    const float* vb = p.value_bias + static_cast<long>(hp) * HS;
                    for (int i = 0; i < T; ++i)
                        for (int e = 0; e < HS; ++e) o[i * os + e] += vb[e];
                }
            }
        }
    }
}

void attention_backward(float* dqkv, const AttentionParamGrads& dp, const float* dout, const AttentionInputs& in,
                        const AttentionParams& p, const float* weights, const float* slot_weights,
                        const AttentionDims& d, const AttentionSpec& spec, const AttentionMask& mask) {
    check_call(weights, slot_weights != nullptr, in, p, d, spec);
    const int B = d.B, T = d.T, NH = d.NH, HS = d.HS, group = d.NH / d.NKV;
    const long qs = d.qkv_stride(), os = d.out_stride();
    const float scale = attention_scale(spec, HS);
    const bool features = spec.kind == AttentionKind::linear_elu;
    const bool recompute = spec.kind != AttentionKind::softmax;  // f' and Z need the scores again
    const bool slot_keyed = spec.slot == SlotKind::kv || spec.slot == SlotKind::k;
    ParamPartials part;
    if (slot_keyed && dp.slot_k) part.slot_k.assign(static_cast<size_t>(B) * NH * HS, 0.0f);
    if (spec.slot == SlotKind::kv && dp.slot_v) part.slot_v.assign(static_cast<size_t>(B) * NH * HS, 0.0f);
    if (spec.slot == SlotKind::score && dp.slot_score) part.slot_score.assign(static_cast<size_t>(B) * NH, 0.0f);
    if (spec.sigmoid_bias_learnable && dp.sigmoid_bias) part.sigmoid_bias.assign(static_cast<size_t>(B) * NH, 0.0f);
    if (in.score_bias && dp.score_bias) part.score_bias.resize(static_cast<size_t>(B) * NH * T * T);
    // Parallel over (batch, kv head): the query heads of one group all write that group's dk, dv.
    #pragma omp parallel
    {
        std::vector<float> dw(static_cast<size_t>(T) * T);  // (T, T) scratch: dL/dweights, then dL/dscores
        std::vector<float> s(recompute ? static_cast<size_t>(T) * T : 0);  // (T, T) recomputed scores
        // linear_elu: phi(q), phi(k), dL/dphi(q), dL/dphi(k) summed over the group, (T, HS) each
        std::vector<float> phi(features ? 4L * T * HS : 0);
        float* phi_q = phi.data();
        float* phi_k = phi.data() + static_cast<long>(T) * HS;
        float* dphi_q = phi.data() + 2L * T * HS;
        float* dphi_k = phi.data() + 3L * T * HS;
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; ++b) {
            for (int kvh = 0; kvh < d.NKV; ++kvh) {
                const long base = static_cast<long>(b) * T * qs;
                const float* k = in.qkv + base + static_cast<long>(NH + kvh) * HS;
                const float* v = in.qkv + base + static_cast<long>(NH + d.NKV + kvh) * HS;
                float* dk = dqkv + base + static_cast<long>(NH + kvh) * HS;
                float* dv = dqkv + base + static_cast<long>(NH + d.NKV + kvh) * HS;
                if (features) std::memset(dphi_k, 0, sizeof(float) * T * HS);
                for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
                    const float* q = in.qkv + base + static_cast<long>(h) * HS;
                    float* dq = dqkv + base + static_cast<long>(h) * HS;
                    const float* w = weights + (static_cast<long>(b) * NH + h) * T * T;
                    const float* ws = slot_weights ? slot_weights + (static_cast<long>(b) * NH + h) * T : nullptr;
                    const float* o_grad = dout + static_cast<long>(b) * T * os + static_cast<long>(h) * HS;
                    const long bh = static_cast<long>(b) * NH + h;
                    const int hp = spec.shared_heads ? 0 : h;
                    // in the forward pass this was: out = w v + w* v*
                    // dv += w^T dout ; dw = dout v^T ; dw* = dout v* ; dv* += w*^T dout
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, w, T, o_grad, os, 1.0f, dv,
                                qs);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, 1.0f, o_grad, os, v, qs, 0.0f,
                                dw.data(), T);
                    const float* vs = spec.slot == SlotKind::kv ? p.slot_v + static_cast<long>(hp) * HS : nullptr;
                    if (vs && dp.slot_v)
                        for (int i = 0; i < T; ++i)
                            for (int e = 0; e < HS; ++e) part.slot_v[bh * HS + e] += ws[i] * o_grad[i * os + e];
                    // in the forward pass this was: w = rows of f(scores), scores = scale q k^T (+ bias)
                    if (recompute)
                        head_scores(s.data(), q, k, phi_q, phi_k,
                                    in.score_bias ? in.score_bias + static_cast<long>(h) * T * T : nullptr, spec, T,
                                    HS, qs, scale, mask);
                    const RowFunction rf = row_function(spec, p, h);
                    const float* ks = slot_keyed ? p.slot_k + static_cast<long>(hp) * HS : nullptr;
                    for (int i = 0; i < T; ++i) {
                        float* g = dw.data() + static_cast<long>(i) * T;
                        const float* s_row = recompute ? s.data() + static_cast<long>(i) * T : nullptr;
                        const int lo = mask.lo(i), hi = mask.hi(i, T);
                        float ds_slot = 0.0f;
                        if (ws) {
                            const float s_slot = slot_score(spec, p, q + i * qs, h, HS, scale);
                            float gs = 0.0f;
                            if (vs)
                                for (int e = 0; e < HS; ++e) gs += o_grad[i * os + e] * vs[e];
                            ds_slot = row_backward(rf, s_row, w + static_cast<long>(i) * T, g, T, lo, hi, &s_slot,
                                                   ws[i], gs);
                        } else {
                            row_backward(rf, s_row, w + static_cast<long>(i) * T, g, T, lo, hi, nullptr, 0.0f, 0.0f);
                        }
                        // slot score = scale q.k*: dq += scale ds* k*, dk* += scale ds* q ; or the logit itself
                        if (ks) {
                            for (int e = 0; e < HS; ++e) dq[i * qs + e] += scale * ds_slot * ks[e];
                            if (dp.slot_k)
                                for (int e = 0; e < HS; ++e)
                                    part.slot_k[bh * HS + e] += scale * ds_slot * q[i * qs + e];
                        }
                        if (spec.slot == SlotKind::score && dp.slot_score) part.slot_score[bh] += ds_slot;
                        // f = sigmoid(s + b): dL/db = sum of dL/ds over the row and the slot
                        if (spec.sigmoid_bias_learnable && dp.sigmoid_bias) {
                            float sum = ds_slot;
                            for (int j = lo; j <= hi; ++j) sum += g[j];
                            part.sigmoid_bias[bh] += sum;
                        }
                    }
                    // scores = ... + bias: dL/dbias = dL/dscores
                    if (!part.score_bias.empty())
                        std::memcpy(part.score_bias.data() + bh * T * T, dw.data(), sizeof(float) * T * T);
                    if (features) {
                        // scores = scale phi(q) phi(k)^T: dphi(q) = scale ds phi(k) ; dphi(k) += scale ds^T phi(q)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, scale, dw.data(), T, phi_k,
                                    HS, 0.0f, dphi_q, HS);
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, scale, dw.data(), T, phi_q, HS,
                                    1.0f, dphi_k, HS);
                        elu1_features_backward(dq, dphi_q, phi_q, q, T, HS, qs);
                    } else {
                        // scores = scale q k^T: dq += scale ds k ; dk += scale ds^T q
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, scale, dw.data(), T, k, qs,
                                    1.0f, dq, qs);
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, scale, dw.data(), T, q, qs,
                                    1.0f, dk, qs);
                    }
                }
                if (features) elu1_features_backward(dk, dphi_k, phi_k, k, T, HS, qs);
            }
        }
    }
    if (!part.slot_k.empty()) reduce_partials(dp.slot_k, part.slot_k, B, NH, HS, spec.shared_heads);
    if (!part.slot_v.empty()) reduce_partials(dp.slot_v, part.slot_v, B, NH, HS, spec.shared_heads);
    if (!part.slot_score.empty()) reduce_partials(dp.slot_score, part.slot_score, B, NH, 1, false);
    if (!part.sigmoid_bias.empty()) reduce_partials(dp.sigmoid_bias, part.sigmoid_bias, B, NH, 1, spec.shared_heads);
    if (!part.score_bias.empty()) reduce_partials(dp.score_bias, part.score_bias, B, NH, T * T, false);
    // in the forward pass this was: out_h += value bias (every row): its gradient sums dout
    if (spec.value_bias && dp.value_bias)
        for (int h = 0; h < NH; ++h)
            for (int bt = 0; bt < B * T; ++bt)
                for (int e = 0; e < HS; ++e)
                    dp.value_bias[static_cast<long>(spec.shared_heads ? 0 : h) * HS + e] +=
                        dout[static_cast<long>(bt) * os + static_cast<long>(h) * HS + e];
}

void attention_forward(float* out, float* weights, const AttentionInputs& in, const AttentionDims& dims,
                       const AttentionSpec& spec, const AttentionMask& mask) {
    attention_forward(out, weights, nullptr, in, AttentionParams{}, dims, spec, mask);
}

void attention_backward(float* dqkv, const float* dout, const AttentionInputs& in, const float* weights,
                        const AttentionDims& dims, const AttentionSpec& spec, const AttentionMask& mask) {
    attention_backward(dqkv, AttentionParamGrads{}, dout, in, AttentionParams{}, weights, nullptr, dims, spec, mask);
}

}  // namespace sinklab
