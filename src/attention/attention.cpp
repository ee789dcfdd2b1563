#include "attention/attention.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <omp.h>

#include "attention/row_arithmetic.h"
#include "attention/score_bias.h"
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

using namespace attention_rows;

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
// The scores of a strip of head h into s (rows of stride T, columns [c0, c1) filled): scale a b^T,
// where a is q (row stride qs) or linear_elu's features phi(q) (row stride HS) and b_t is k or
// phi(k) transposed, (HS, T); soft-capped, plus the positional bias, over each row's visible keys.
void strip_scores(float* s, const Strip& st, const float* a, long stride, const float* b_t, const DistanceBias& bias,
                  int h, float softcap, int T, int HS, float scale, const AttentionMask& mask) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, st.rows(), st.cols(), HS, scale, a + st.i0 * stride, stride,
                b_t + st.c0, T, 0.0f, s + static_cast<long>(st.i0) * T + st.c0, T);
    if (softcap == 0.0f && bias.empty()) return;
    for (int i = st.i0; i < st.i1; ++i) {
        float* row = s + static_cast<long>(i) * T;
        const int lo = mask.lo(i), hi = mask.hi(i, T);
        if (softcap > 0.0f)
            for (int j = lo; j <= hi; ++j) row[j] = soft_cap(row[j], softcap);
        if (!bias.empty()) {
            const float* b = bias.row(h, i);
            for (int j = lo; j <= hi; ++j) row[j] += b[j];
        }
    }
}

void check_call(const AttentionSaved& saved, const AttentionInputs& in, const AttentionParams& p,
                const AttentionDims& d, const AttentionSpec& spec, const AttentionMask& mask) {
    spec.validate();
    mask.first_keys.validate();
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
    SINKLAB_CHECK(spec.kind != AttentionKind::linear_elu || in.bias.kind == ScoreBiasKind::none, "attention",
                  "linear_elu is a kernel design: an additive score bias (ALiBi, relative) does not apply");
}

}  // namespace

AttentionSavedNeeds attention_saved_needs(const AttentionSpec& spec) {
    return {spec.has_slot(), spec.kind != AttentionKind::softmax && spec.normalised,
            spec.kind == AttentionKind::softpick || spec.softcap > 0.0f};
}

void attention_forward(float* out, const AttentionSaved& saved, const AttentionInputs& in, const AttentionParams& p,
                       const AttentionDims& d, const AttentionSpec& spec, const AttentionMask& batch_mask) {
    check_call(saved, in, p, d, spec, batch_mask);
    const int T = d.T, HS = d.HS, group = d.NH / d.NKV;
    const long qs = d.qkv_stride(), os = d.out_stride();
    const float scale = attention_scale(spec, HS);
    const bool features = spec.kind == AttentionKind::linear_elu;
    const DistanceBias bias(in.bias, d.NH, T);
    // Key lengths change which columns a call writes from one call to the next: rows are then written whole.
    const bool zeros_kept = saved.zeros_kept && !batch_mask.key_lengths;
    #pragma omp parallel
    {
        std::vector<float> phi(features ? 2L * T * HS : 0);  // linear_elu: phi(q), phi(k) (T, HS) each
        std::vector<float> key_t(static_cast<size_t>(HS) * T);  // k or phi(k), transposed
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < d.B; ++b) {
            for (int h = 0; h < d.NH; ++h) {
                const int kvh = h / group;
                const long bh = static_cast<long>(b) * d.NH + h;
                const AttentionMask mask = batch_mask.sequence(b);
                const std::vector<Strip> head_strips = strips(T, mask);
                const float* q = in.qkv + static_cast<long>(b) * T * qs + static_cast<long>(h) * HS;
                const float* k = in.qkv + static_cast<long>(b) * T * qs + static_cast<long>(d.NH + kvh) * HS;
                const float* v = in.qkv + static_cast<long>(b) * T * qs + static_cast<long>(d.NH + d.NKV + kvh) * HS;
                float* w = saved.weights + bh * T * T;                                   // (T, T)
                float* ws = saved.slot_weights ? saved.slot_weights + bh * T : nullptr;  // (T)
                float* sums = saved.row_sums ? saved.row_sums + bh * T : nullptr;        // (T)
                float* kept_scores = saved.scores ? saved.scores + bh * T * T : nullptr;  // (T, T)
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
                    strip_scores(w, st, sa, sstride, key_t.data(), bias, h, spec.softcap, T, HS, scale, mask);
                    const Fill fill = zeros_kept ? Fill{st.c0, st.c1} : Fill{0, T};
                    for (int i = st.i0; i < st.i1; ++i) {
                        float* row = w + static_cast<long>(i) * T;
                        const int lo = mask.lo(i), hi = mask.hi(i, T);
                        if (kept_scores) std::memcpy(kept_scores + static_cast<long>(i) * T + lo, row + lo,
                                                     sizeof(float) * (hi - lo + 1));
                        float s_slot = 0.0f;
                        if (ws) s_slot = slot_score(spec, p, q + i * qs, h, HS, scale);
                        const RowResult r =
                            row_forward(rf, row, fill, lo, hi, ws ? &s_slot : nullptr, mask.first_key_factor(i));
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
                        const AttentionSpec& spec, const AttentionMask& batch_mask, GradWrite dqkv_write) {
    check_call(saved, in, p, d, spec, batch_mask);
    SINKLAB_CHECK(batch_mask.first_keys.factor == 1.0f, "attention",
                  "scaling the first key's weight (scale-first) is an inference-time intervention: it has no backward");
    const int B = d.B, T = d.T, NH = d.NH, HS = d.HS, group = d.NH / d.NKV;
    const long qs = d.qkv_stride(), os = d.out_stride();
    const float scale = attention_scale(spec, HS);
    const bool features = spec.kind == AttentionKind::linear_elu;
    const bool slot_keyed = spec.slot == SlotKind::kv || spec.slot == SlotKind::k;
    const DistanceBias bias(in.bias, NH, T);
    ParamPartials part(spec, dp, in.bias, B, NH, HS, bias.width());
    const bool relative_grad = !part.distance_bias.empty();
    // Parallel over (batch, kv head): the query heads of one group all write that group's dk, dv.
    #pragma omp parallel
    {
        // (T, T) scratch: dL/dweights, then dL/dscores (rows of the current strip)
        std::vector<float> dw(static_cast<size_t>(T) * T);
        const FeatureBuffers features_of_task(features, T, HS);  // linear_elu only; null pointers otherwise
        float *phi_q = features_of_task.phi_q, *phi_k = features_of_task.phi_k;
        float *dphi_q = features_of_task.dphi_q, *dphi_k = features_of_task.dphi_k;
        std::vector<float> v_t(static_cast<size_t>(HS) * T);  // v of the task, transposed
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; ++b) {
            for (int kvh = 0; kvh < d.NKV; ++kvh) {
                const AttentionMask mask = batch_mask.sequence(b);
                const std::vector<Strip> head_strips = strips(T, mask);
                const long base = static_cast<long>(b) * T * qs;
                const auto [k, v, dk, dv] = kv_head_columns(in.qkv + base, dqkv + base, kvh, NH, d.NKV, HS);
                if (dqkv_write == GradWrite::overwrite) zero_task_columns(dqkv + base, T, qs, kvh, group, NH, d.NKV, HS);
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
                        const Fill fill{st.c0, st.c1};  // the strip's products read only its columns
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
                            // scores = softcap(scale q.k) + bias(j - i): dL/dbias = dL/dscores
                            if (relative_grad) {
                                double* dd = DistanceBias::row(part.distance_bias.data() + b * NH * bias.width(), h,
                                                              i, T);
                                for (int j = lo; j <= hi; ++j) dd[j] += g[j];
                            }
                            // and dL/d(scale q.k) = dL/dscores (1 - (capped / c)^2)
                            if (spec.softcap > 0.0f) {
                                const float* b_row = bias.empty() ? nullptr : bias.row(h, i);
                                for (int j = lo; j <= hi; ++j)
                                    g[j] *= soft_cap_derivative(s_row[j] - (b_row ? b_row[j] : 0.0f), spec.softcap);
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
                    if (features) elu1_features_backward(dq, dphi_q, phi_q, q, T, HS, qs);
                }
                if (features) elu1_features_backward(dk, dphi_k, phi_k, k, T, HS, qs);
            }
        }
    }
    part.reduce_into(dp, spec, bias, dout, T, os);
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
