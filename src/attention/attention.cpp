#include "attention/attention.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <omp.h>

#include "core/error.h"
#include "core/rng.h"
#include "ops/transpose.h"
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

template <AttentionKind K>
RowEntry row_entry(float s, float bias, float shift, float e_neg) {
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

Normaliser normaliser(const RowFunction& rf, float S) {
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
constexpr int kSlotIndex = -1;

RowMax row_max(const float* s, int lo, int hi, const float* slot) {
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
// in float. Returns the slot weight (0 without a slot).
template <bool kSlot>
float softmax_row(float* row, Fill fill, int lo, int hi, float slot) {
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
// that the loops vectorise.
template <AttentionKind K>
RowResult generic_row(const RowFunction& rf, float* row, Fill fill, int lo, int hi, const float* slot) {
    const float shift = K == AttentionKind::softpick ? row_max(row, lo, hi, slot).value : 0.0f;
    const float e_neg = std::exp(-shift), bias = rf.bias;
    float S = 0.0f;
    #pragma omp simd reduction(+ : S)
    for (int j = lo; j <= hi; ++j) {
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

RowResult row_forward(const RowFunction& rf, float* row, Fill fill, int lo, int hi, const float* slot) {
    using K = AttentionKind;
    switch (rf.kind) {
        case K::softmax:
            return {slot ? softmax_row<true>(row, fill, lo, hi, *slot) : softmax_row<false>(row, fill, lo, hi, 0.0f),
                    0.0f};
        case K::sigmoid: return generic_row<K::sigmoid>(rf, row, fill, lo, hi, slot);
        case K::elu1: return generic_row<K::elu1>(rf, row, fill, lo, hi, slot);
        case K::softpick: return generic_row<K::softpick>(rf, row, fill, lo, hi, slot);
        case K::identity:
        case K::linear_elu: break;
    }
    return generic_row<K::identity>(rf, row, fill, lo, hi, slot);
}

// Backward of a softmax row: g (dL/dw) becomes dL/ds = w (g - sum_k w_k g_k) on the visible keys
// and 0 on the rest of `fill`; the slot has weight ws and dL/dw* = gs. Returns dL/ds*.
template <bool kSlot>
float softmax_row_backward(const float* w, float* g, Fill fill, int lo, int hi, float ws, float gs) {
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
float derivative_from_value(AttentionKind kind, float f) {
    if (kind == AttentionKind::sigmoid) return f * (1.0f - f);
    if (kind == AttentionKind::elu1) return f > 1.0f ? 1.0f : f;
    return 1.0f;
}

// Backward of a row of those designs (n = d, so dL/ds_j = f'_j (g_j - N'(S) sum_k w_k g_k) / Z):
// w the saved weights, S the saved sum (unused when unnormalised); the slot has weight ws and
// dL/dw* = gs. Returns dL/ds*.
float value_row_backward(const RowFunction& rf, const float* w, float* g, Fill fill, int lo, int hi, bool slot, float S,
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
float softpick_row_backward(const RowFunction& rf, const float* s, const float* w, float* g, Fill fill, int lo, int hi,
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
float row_backward(const RowFunction& rf, const float* w, float* g, Fill fill, int lo, int hi, const float* slot,
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

// Query rows [i0, i1) of a head, which together see key columns [c0, c1): every product of the
// kernel runs on strips, so that a causal head computes about half of the T x T scores.
struct Strip {
    int i0, i1, c0, c1;
    int rows() const { return i1 - i0; }
    int cols() const { return c1 - c0; }
};

constexpr int kStripRows = 32;

std::vector<Strip> strips(int T, const AttentionMask& mask) {
    std::vector<Strip> out;
    for (int i0 = 0; i0 < T; i0 += kStripRows) {
        const int i1 = i0 + kStripRows < T ? i0 + kStripRows : T;
        out.push_back({i0, i1, mask.lo(i0), mask.hi(i1 - 1, T) + 1});  // lo and hi never decrease with i
    }
    return out;
}

// OpenBLAS's small-matrix kernel takes strip-sized products without packing them; its variant for
// a transposed right operand (a b^T) is the slower one on some shapes. The two a b^T products,
// q k^T forward and dout v^T backward, take k and v transposed once per task: 8-14% off the
// kernel at both presets' shapes. The a^T b products (dk, dv) stay as they are: through
// transposed accumulators the backward was 7-15% slower.
//
// The scores of a strip into s (rows of stride T, columns [c0, c1) filled): scale a b^T, where a
// is q (row stride qs) or linear_elu's features phi(q) (row stride HS) and b_t is k or phi(k)
// transposed, (HS, T); plus the additive score bias over each row's visible keys.
void strip_scores(float* s, const Strip& st, const float* a, long stride, const float* b_t, const float* bias, int T,
                  int HS, float scale, const AttentionMask& mask) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, st.rows(), st.cols(), HS, scale, a + st.i0 * stride, stride,
                b_t + st.c0, T, 0.0f, s + static_cast<long>(st.i0) * T + st.c0, T);
    if (!bias) return;
    for (int i = st.i0; i < st.i1; ++i) {
        const long r = static_cast<long>(i) * T;
        for (int j = mask.lo(i); j <= mask.hi(i, T); ++j) s[r + j] += bias[r + j];
    }
}

void check_call(const AttentionSaved& saved, const AttentionInputs& in, const AttentionParams& p,
                const AttentionDims& d, const AttentionSpec& spec) {
    spec.validate();
    SINKLAB_CHECK(d.NKV > 0 && d.NH % d.NKV == 0, "attention", "{} query heads cannot share {} kv heads", d.NH, d.NKV);
    SINKLAB_CHECK(in.qkv && saved.weights, "attention", "the kernel needs qkv and a weights buffer (B, NH, T, T)");
    const AttentionSavedNeeds needs = attention_saved_needs(spec);
    SINKLAB_CHECK(!needs.slot_weights || saved.slot_weights, "attention",
                  "this attention design has a slot column: pass slot_weights (B, NH, T)");
    SINKLAB_CHECK(needs.slot_weights || !saved.slot_weights, "attention",
                  "slot_weights given to an attention design without a slot column");
    SINKLAB_CHECK(!needs.row_sums || saved.row_sums, "attention",
                  "attention design {} keeps the sum of each row for backward: pass row_sums (B, NH, T)", spec.name());
    SINKLAB_CHECK(!needs.scores || saved.scores, "attention",
                  "attention design {} keeps its scores for backward: pass scores (B, NH, T, T)", spec.name());
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

AttentionSavedNeeds attention_saved_needs(const AttentionSpec& spec) {
    return {spec.has_slot(), spec.kind != AttentionKind::softmax && spec.normalised,
            spec.kind == AttentionKind::softpick};
}

void attention_forward(float* out, const AttentionSaved& saved, const AttentionInputs& in, const AttentionParams& p,
                       const AttentionDims& d, const AttentionSpec& spec, const AttentionMask& mask) {
    check_call(saved, in, p, d, spec);
    const int T = d.T, HS = d.HS, group = d.NH / d.NKV;
    const long qs = d.qkv_stride(), os = d.out_stride();
    const float scale = attention_scale(spec, HS);
    const bool features = spec.kind == AttentionKind::linear_elu;
    const std::vector<Strip> head_strips = strips(T, mask);
    #pragma omp parallel
    {
        std::vector<float> phi(features ? 2L * T * HS : 0);  // linear_elu: phi(q), phi(k) (T, HS) each
        std::vector<float> key_t(static_cast<size_t>(HS) * T);  // k or phi(k), transposed
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < d.B; ++b) {
            for (int h = 0; h < d.NH; ++h) {
                const int kvh = h / group;
                const long bh = static_cast<long>(b) * d.NH + h;
                const float* q = in.qkv + static_cast<long>(b) * T * qs + static_cast<long>(h) * HS;
                const float* k = in.qkv + static_cast<long>(b) * T * qs + static_cast<long>(d.NH + kvh) * HS;
                const float* v = in.qkv + static_cast<long>(b) * T * qs + static_cast<long>(d.NH + d.NKV + kvh) * HS;
                float* w = saved.weights + bh * T * T;                                   // (T, T)
                float* ws = saved.slot_weights ? saved.slot_weights + bh * T : nullptr;  // (T)
                float* sums = saved.row_sums ? saved.row_sums + bh * T : nullptr;        // (T)
                float* kept_scores = saved.scores ? saved.scores + bh * T * T : nullptr;  // (T, T)
                const float* bias = in.score_bias ? in.score_bias + static_cast<long>(h) * T * T : nullptr;
                float* o = out + static_cast<long>(b) * T * os + static_cast<long>(h) * HS;
                // scores = scale q k^T, or scale phi(q) phi(k)^T for linear_elu, (+ bias)
                const float* sa = q;
                const float* sb = k;
                long sstride = qs;
                if (features) {
                    elu1_features(phi.data(), q, T, HS, qs);
                    elu1_features(phi.data() + static_cast<long>(T) * HS, k, T, HS, qs);
                    sa = phi.data();
                    sb = phi.data() + static_cast<long>(T) * HS;
                    sstride = HS;
                }
                transpose_rows(key_t.data(), sb, T, HS, sstride);
                const RowFunction rf = row_function(spec, p, h);
                for (const Strip& st : head_strips) {
                    strip_scores(w, st, sa, sstride, key_t.data(), bias, T, HS, scale, mask);
                    const Fill fill = saved.zeros_kept ? Fill{st.c0, st.c1} : Fill{0, T};
                    for (int i = st.i0; i < st.i1; ++i) {
                        float* row = w + static_cast<long>(i) * T;
                        const int lo = mask.lo(i), hi = mask.hi(i, T);
                        if (kept_scores) std::memcpy(kept_scores + static_cast<long>(i) * T + lo, row + lo,
                                                     sizeof(float) * (hi - lo + 1));
                        float s_slot = 0.0f;
                        if (ws) s_slot = slot_score(spec, p, q + i * qs, h, HS, scale);
                        const RowResult r = row_forward(rf, row, fill, lo, hi, ws ? &s_slot : nullptr);
                        if (ws) ws[i] = r.slot_weight;
                        if (sums) sums[i] = r.sum;
                    }
                    // out_h = w v over the strip's columns (w is zero outside them)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, st.rows(), HS, st.cols(), 1.0f,
                                w + static_cast<long>(st.i0) * T + st.c0, T, v + st.c0 * qs, qs, 0.0f, o + st.i0 * os,
                                os);
                }
                // out_h += w* v* (+ value bias)
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
                        const AttentionParams& p, const AttentionSaved& saved, const AttentionDims& d,
                        const AttentionSpec& spec, const AttentionMask& mask, GradWrite dqkv_write) {
    check_call(saved, in, p, d, spec);
    const int B = d.B, T = d.T, NH = d.NH, HS = d.HS, group = d.NH / d.NKV;
    const long qs = d.qkv_stride(), os = d.out_stride();
    const float scale = attention_scale(spec, HS);
    const bool features = spec.kind == AttentionKind::linear_elu;
    const bool slot_keyed = spec.slot == SlotKind::kv || spec.slot == SlotKind::k;
    const std::vector<Strip> head_strips = strips(T, mask);
    ParamPartials part;
    if (slot_keyed && dp.slot_k) part.slot_k.assign(static_cast<size_t>(B) * NH * HS, 0.0f);
    if (spec.slot == SlotKind::kv && dp.slot_v) part.slot_v.assign(static_cast<size_t>(B) * NH * HS, 0.0f);
    if (spec.slot == SlotKind::score && dp.slot_score) part.slot_score.assign(static_cast<size_t>(B) * NH, 0.0f);
    if (spec.sigmoid_bias_learnable && dp.sigmoid_bias) part.sigmoid_bias.assign(static_cast<size_t>(B) * NH, 0.0f);
    if (in.score_bias && dp.score_bias) part.score_bias.resize(static_cast<size_t>(B) * NH * T * T);
    // Parallel over (batch, kv head): the query heads of one group all write that group's dk, dv.
    #pragma omp parallel
    {
        // (T, T) scratch: dL/dweights, then dL/dscores (rows of the current strip)
        std::vector<float> dw(static_cast<size_t>(T) * T);
        // linear_elu: phi(q), phi(k), dL/dphi(q), dL/dphi(k) summed over the group, (T, HS) each
        std::vector<float> phi(features ? 4L * T * HS : 0);
        float* phi_q = phi.data();
        float* phi_k = phi.data() + static_cast<long>(T) * HS;
        float* dphi_q = phi.data() + 2L * T * HS;
        float* dphi_k = phi.data() + 3L * T * HS;
        std::vector<float> v_t(static_cast<size_t>(HS) * T);  // v of the task, transposed
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; ++b) {
            for (int kvh = 0; kvh < d.NKV; ++kvh) {
                const long base = static_cast<long>(b) * T * qs;
                const float* k = in.qkv + base + static_cast<long>(NH + kvh) * HS;
                const float* v = in.qkv + base + static_cast<long>(NH + d.NKV + kvh) * HS;
                float* dk = dqkv + base + static_cast<long>(NH + kvh) * HS;
                float* dv = dqkv + base + static_cast<long>(NH + d.NKV + kvh) * HS;
                if (dqkv_write == GradWrite::overwrite) {
                    // this task's columns of dqkv (its query heads, k and v), which only it writes:
                    // zeroed here, in parallel and just before use, rather than by the caller
                    for (int t = 0; t < T; ++t) {
                        std::fill_n(dqkv + base + t * qs + static_cast<long>(kvh) * group * HS, group * HS, 0.0f);
                        std::fill_n(dk + t * qs, HS, 0.0f);
                        std::fill_n(dv + t * qs, HS, 0.0f);
                    }
                }
                if (features) {
                    elu1_features(phi_k, k, T, HS, qs);
                    std::memset(dphi_k, 0, sizeof(float) * T * HS);
                }
                transpose_rows(v_t.data(), v, T, HS, qs);
                for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
                    const long bh = static_cast<long>(b) * NH + h;
                    const float* q = in.qkv + base + static_cast<long>(h) * HS;
                    float* dq = dqkv + base + static_cast<long>(h) * HS;
                    const float* w = saved.weights + bh * T * T;
                    const float* ws = saved.slot_weights ? saved.slot_weights + bh * T : nullptr;
                    const float* sums = saved.row_sums ? saved.row_sums + bh * T : nullptr;
                    const float* kept_scores = saved.scores ? saved.scores + bh * T * T : nullptr;
                    const float* o_grad = dout + static_cast<long>(b) * T * os + static_cast<long>(h) * HS;
                    const int hp = spec.shared_heads ? 0 : h;
                    const float* vs = spec.slot == SlotKind::kv ? p.slot_v + static_cast<long>(hp) * HS : nullptr;
                    const float* ks = slot_keyed ? p.slot_k + static_cast<long>(hp) * HS : nullptr;
                    const RowFunction rf = row_function(spec, p, h);
                    if (features) elu1_features(phi_q, q, T, HS, qs);
                    // in the forward pass this was: out = w v + w* v*: dv* += w*^T dout
                    if (vs && dp.slot_v)
                        for (int i = 0; i < T; ++i)
                            for (int e = 0; e < HS; ++e) part.slot_v[bh * HS + e] += ws[i] * o_grad[i * os + e];
                    for (const Strip& st : head_strips) {
                        const float* w_strip = w + static_cast<long>(st.i0) * T + st.c0;
                        float* g_strip = dw.data() + static_cast<long>(st.i0) * T + st.c0;
                        // dv += w^T dout ; dw = dout v^T (over the strip)
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, st.cols(), HS, st.rows(), 1.0f, w_strip,
                                    T, o_grad + st.i0 * os, os, 1.0f, dv + st.c0 * qs, qs);
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, st.rows(), st.cols(), HS, 1.0f,
                                    o_grad + st.i0 * os, os, v_t.data() + st.c0, T, 0.0f, g_strip, T);
                        // in the forward pass this was: w = rows of f(scores)
                        // the strip's products read only its columns; the score-bias gradient copies whole rows
                        const Fill fill = part.score_bias.empty() ? Fill{st.c0, st.c1} : Fill{0, T};
                        for (int i = st.i0; i < st.i1; ++i) {
                            float* g = dw.data() + static_cast<long>(i) * T;
                            const int lo = mask.lo(i), hi = mask.hi(i, T);
                            const float S = sums ? sums[i] : 0.0f;
                            const float* s_row = kept_scores ? kept_scores + static_cast<long>(i) * T : nullptr;
                            float ds_slot = 0.0f;
                            if (ws) {
                                // dw* = dout v*
                                const float s_slot = slot_score(spec, p, q + i * qs, h, HS, scale);
                                float gs = 0.0f;
                                if (vs)
                                    for (int e = 0; e < HS; ++e) gs += o_grad[i * os + e] * vs[e];
                                ds_slot = row_backward(rf, w + static_cast<long>(i) * T, g, fill, lo, hi, &s_slot,
                                                       ws[i], gs, S, s_row);
                            } else {
                                row_backward(rf, w + static_cast<long>(i) * T, g, fill, lo, hi, nullptr, 0.0f, 0.0f, S,
                                             s_row);
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
                        if (features) {
                            // scores = scale phi(q) phi(k)^T: dphi(q) = scale ds phi(k) ; dphi(k) += scale ds^T phi(q)
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, st.rows(), HS, st.cols(), scale,
                                        g_strip, T, phi_k + st.c0 * HS, HS, 0.0f, dphi_q + st.i0 * HS, HS);
                            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, st.cols(), HS, st.rows(), scale,
                                        g_strip, T, phi_q + st.i0 * HS, HS, 1.0f, dphi_k + st.c0 * HS, HS);
                        } else {
                            // scores = scale q k^T: dq += scale ds k ; dk += scale ds^T q
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, st.rows(), HS, st.cols(), scale,
                                        g_strip, T, k + st.c0 * qs, qs, 1.0f, dq + st.i0 * qs, qs);
                            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, st.cols(), HS, st.rows(), scale,
                                        g_strip, T, q + st.i0 * qs, qs, 1.0f, dk + st.c0 * qs, qs);
                        }
                    }
                    // scores = ... + bias: dL/dbias = dL/dscores (rows are zero outside the visible keys)
                    if (!part.score_bias.empty())
                        std::memcpy(part.score_bias.data() + bh * T * T, dw.data(), sizeof(float) * T * T);
                    if (features) elu1_features_backward(dq, dphi_q, phi_q, q, T, HS, qs);
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
    attention_forward(out, AttentionSaved{weights}, in, AttentionParams{}, dims, spec, mask);
}

void attention_backward(float* dqkv, const float* dout, const AttentionInputs& in, const float* weights,
                        const AttentionDims& dims, const AttentionSpec& spec, const AttentionMask& mask) {
    attention_backward(dqkv, AttentionParamGrads{}, dout, in, AttentionParams{},
                       AttentionSaved{const_cast<float*>(weights)}, dims, spec, mask);
}

}  // namespace sinklab
