#include "attention/blockwise_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include <omp.h>

#include "attention/row_arithmetic.h"
#include "attention/score_bias.h"
#include "attention/tile_products.h"
#include "core/error.h"
#include "ops/vector_math.h"

namespace sinklab {

AttentionRowStatsNeeds attention_row_stats_needs(const AttentionSpec& spec) {
    const bool shifted = spec.kind == AttentionKind::softmax || spec.kind == AttentionKind::softpick;
    return {shifted, spec.normalised, spec.kind == AttentionKind::softpick};
}

namespace {

using namespace attention_rows;


// x ln x, 0 at 0: the entropy taps' term.
inline double x_log_x(double x) { return x > 0.0 ? x * std::log(x) : 0.0; }

// One query row's running sums while its strip meets the key tiles. Shifted designs (softmax,
// softpick) keep everything in units of e^m, m the largest score so far; the others have m = 0.
struct RowState {
    float m = -INFINITY;
    double S = 0.0;  // sum of d(s) over the slot and the keys so far
    double X = 0.0;  // taps: sum over the token keys of x = |n(s)|, the weight before the normaliser
    double Y = 0.0;  // taps: sum of x ln x
    int32_t argmax = kSlotArgmax - 1;  // softpick: where m is (none yet)
};

// The value n(s) (before the normaliser) of one score at the row's final shift m, e_neg = e^-m;
// bias = sigmoid's b.
template <AttentionKind K>
inline float row_value(float s, float bias, float m, float e_neg) {
    if constexpr (K == AttentionKind::softmax)
        return exp_fast(s - m);
    else
        return row_entry<K>(s, bias, m, e_neg).n;
}

// The entry of one row's visible keys [a, b] of a tile (columns relative to the tile), in place:
// scores in, n(s) out (zero over the rest of [0, cols)), taken into the row's sums. Returns the
// factor the row's output accumulator must be multiplied by first (its shift moved), 1 if none.
// `key0` is the tile's first key (softpick's argmax); `taps` asks for the entropy's x ln x.
template <AttentionKind K>
float tile_row(RowState& st, float* s, int cols, int a, int b, int key0, float bias, bool taps) {
    float c = 1.0f;
    if constexpr (K == AttentionKind::softmax || K == AttentionKind::softpick) {
        float tmax = -INFINITY;
        #pragma omp simd reduction(max : tmax)
        for (int j = a; j <= b; ++j) tmax = s[j] > tmax ? s[j] : tmax;
        if (tmax > st.m) {
            if (st.m == -INFINITY) {
                c = 0.0f;
            } else {
                const double log_c = static_cast<double>(st.m) - tmax;
                c = static_cast<float>(std::exp(log_c));
                // sum x ln x of the rescaled values: c x (ln x + ln c)
                st.Y = c * (st.Y + st.X * log_c);
                st.S *= c;
                st.X *= c;
            }
            st.m = tmax;
            if constexpr (K == AttentionKind::softpick) {
                int at = a;
                while (at < b && s[at] != tmax) ++at;  // the first maximum, as the reference's row_max keeps it
                st.argmax = key0 + at;
            }
        }
    }
    const float m = st.m;
    float S = 0.0f, X = 0.0f;
    if constexpr (K == AttentionKind::softmax) {
        float xl = 0.0f;  // sum e (s - m) = sum x ln x
        #pragma omp simd reduction(+ : S, xl)
        for (int j = a; j <= b; ++j) {
            const float shifted = s[j] - m;
            const float e = exp_fast(shifted);
            s[j] = e;
            S += e;
            xl += e * shifted;
        }
        X = S;
        st.Y += xl;
    } else {
        const float e_neg = K == AttentionKind::softpick ? std::exp(-m) : 0.0f;
        #pragma omp simd reduction(+ : S, X)
        for (int j = a; j <= b; ++j) {
            const RowEntry e = row_entry<K>(s[j], bias, m, e_neg);
            s[j] = e.n;
            S += e.d;
            X += std::abs(e.n);
        }
        if (taps)
            for (int j = a; j <= b; ++j) st.Y += x_log_x(std::abs(s[j]));
    }
    st.S += S;
    st.X += X;
    std::fill(s, s + a, 0.0f);
    std::fill(s + b + 1, s + cols, 0.0f);
    return c;
}

// The slot's entry as the row's first: its n and d at shift m = s* (shifted designs) or 0.
template <AttentionKind K>
float slot_start(RowState& st, float s_slot, float bias) {
    if constexpr (K == AttentionKind::softmax) {
        // a slot logit of -inf takes no weight: the row starts empty (m = -inf, S = 0), the state
        // tile_row expects before any key, not with e^(s* - m) = 1 counted in S
        st.m = s_slot;
        const bool empty = s_slot == -INFINITY;
        st.S = empty ? 0.0 : 1.0;
        return empty ? 0.0f : 1.0f;
    } else {
        if constexpr (K == AttentionKind::softpick) {
            st.m = s_slot;
            st.argmax = kSlotArgmax;
        }
        const RowEntry e = row_entry<K>(s_slot, bias, st.m == -INFINITY ? 0.0f : st.m, std::exp(-s_slot));
        st.S = e.d;
        return e.n;
    }
}

// Query rows [i0, i1) of a head and the keys [c0, c1) they see together.
struct Strip {
    int i0, i1, c0, c1;
    int rows() const { return i1 - i0; }
    // The first tile the strip meets: tiles start at multiples of KB, as the packed keys are laid out.
    int first_tile(int KB) const { return c0 / KB * KB; }
};

// Rows [0, T) of one head (HS floats each, row stride `stride`) transposed tile by tile: tile t
// holds rows [t KB, t KB + KB) as HS rows of KB floats, zeros beyond row T. Scores and dout v^T
// broadcast a query entry against one such row of keys.
void pack_tiles(float* dst, const float* src, int T, int HS, long stride, int KB) {
    for (int t0 = 0; t0 < T; t0 += KB) {
        float* tile = dst + static_cast<long>(t0 / KB) * HS * KB;
        const int n = std::min(KB, T - t0);
        for (int j = 0; j < n; ++j) {
            const float* row = src + (t0 + j) * stride;
            for (int e = 0; e < HS; ++e) tile[e * KB + j] = row[e];
        }
        for (int e = 0; e < HS; ++e) std::fill(tile + e * KB + n, tile + (e + 1) * KB, 0.0f);
    }
}

long packed_size(int T, int HS, int KB) { return static_cast<long>((T + KB - 1) / KB) * HS * KB; }

// How many columns of a tile the score products compute: a whole number of vectors where the tile
// has room (the packed keys are zero or real keys there; the rows' masks ignore those columns).
int score_columns(int cols, int KB) {
    const int rounded = (cols + 15) / 16 * 16;
    return KB % 16 == 0 && rounded <= KB ? rounded : cols;
}

Strip strip_at(int i0, int rows, int T, const AttentionMask& mask) {
    const int i1 = std::min(i0 + rows, T);
    return {i0, i1, mask.lo(i0), mask.hi(i1 - 1, T) + 1};  // lo and hi never decrease with i
}

void check_call(const AttentionRowStats& stats, bool training, const AttentionInputs& in, const AttentionParams& p,
                const AttentionDims& d, const AttentionSpec& spec, const AttentionMask& mask,
                const BlockwiseTiles& tiles) {
    spec.validate();
    mask.first_keys.validate();
    // scale-first on the blockwise kernel: ln F on key 0's score, which is F e^s for softmax rows only
    SINKLAB_CHECK(mask.first_keys.factor == 1.0f || spec.kind == AttentionKind::softmax, "attention",
                  "scaling the first key's weight (scale-first) of design {} needs the materialised kernel",
                  spec.name());
    SINKLAB_CHECK(!training || mask.first_keys.factor == 1.0f, "attention",
                  "scaling the first key's weight (scale-first) is an inference-time intervention: it has no backward");
    SINKLAB_CHECK(d.NKV > 0 && d.NH % d.NKV == 0, "attention", "{} query heads cannot share {} kv heads", d.NH, d.NKV);
    SINKLAB_CHECK(in.qkv, "attention", "the blockwise kernel needs qkv (B, T, (NH + 2 NKV) * HS)");
    SINKLAB_CHECK(tiles.query_rows > 0 && tiles.key_columns > 0, "attention",
                  "blockwise tiles must be positive, got {} query rows and {} key columns", tiles.query_rows,
                  tiles.key_columns);
    for (const AttentionParamInfo& info : attention_param_infos(spec, d.NH, d.HS))
        SINKLAB_CHECK(p.*info.value, "attention", "this attention design needs its parameter {} in AttentionParams",
                      info.name);
    SINKLAB_CHECK(spec.kind != AttentionKind::linear_elu || in.bias.kind == ScoreBiasKind::none, "attention",
                  "linear_elu is a kernel design: an additive score bias (ALiBi, relative) does not apply");
    if (training) {
        const AttentionRowStatsNeeds needs = attention_row_stats_needs(spec);
        SINKLAB_CHECK((!needs.shift || stats.shift) && (!needs.sum || stats.sum) && (!needs.argmax || stats.argmax),
                      "attention", "attention design {} keeps {}{}{}per query row for backward (B, NH, T)", spec.name(),
                      needs.shift ? "its shift m, " : "", needs.sum ? "its sum S, " : "",
                      needs.argmax ? "its argmax, " : "");
    }
}

// What a strip of one head reads, for the forward and the backward alike.
struct HeadView {
    const float* q;  // the strip's first query row (row stride q_stride): q, or linear_elu's phi(q)
    long q_stride;
    const float* k;  // key row 0 (row stride k_stride): k, or phi(k)
    long k_stride;
    const float* k_tiles;  // the keys packed by pack_tiles (k, or phi(k))
    const float* v_tiles;  // the values packed by pack_tiles (backward)
    const float* v;       // value row 0, row stride v_stride
    long v_stride;
    const float* q_raw;   // the head's q in qkv, row 0 (slot scores read it)
    const float* slot_v;  // v* (kv slot) or null
    const float* value_bias;
};

// ---- Forward ---------------------------------------------------------------------------------

struct ForwardScratch {
    std::vector<float> s;        // (QB, KB) scores, then n(s)
    std::vector<float> acc;      // (QB, HS) output accumulator
    std::vector<float> phi_q;    // (QB, HS) linear_elu
    std::vector<float> tracked;  // (QB, columns) scores of the tracked key columns
    std::vector<RowState> rows;  // (QB)
    std::vector<float> slot_scores;  // (QB)
};

template <AttentionKind K>
void forward_strip(const Strip& st, int b, int h, const HeadView& hv, float* out, ForwardScratch& sc, const AttentionDims& d,
                   const AttentionSpec& spec, const RowFunction& rf, const AttentionMask& mask, const DistanceBias& bias,
                   const AttentionRowStats& stats, const AttentionTaps& taps, double* column_part, int KB, float scale,
                   const AttentionParams& p) {
    const int T = d.T, HS = d.HS, rows = st.rows();
    const long qs = d.qkv_stride(), os = d.out_stride();
    const long bh = static_cast<long>(b) * d.NH + h;
    const bool has_slot = spec.has_slot();
    const bool want_entropy = taps.row_entropy != nullptr;
    const int tracked = taps.column_sums ? std::min(taps.columns, T) : 0;
    float* acc = sc.acc.data();
    std::fill_n(acc, static_cast<long>(rows) * HS, 0.0f);
    for (int r = 0; r < rows; ++r) {
        RowState& rs = sc.rows[r];
        rs = RowState{};
        if (K != AttentionKind::softmax && K != AttentionKind::softpick) rs.m = 0.0f;
        if (!has_slot) continue;
        const float s_slot = slot_score(spec, p, hv.q_raw + (st.i0 + r) * qs, h, HS, scale);
        sc.slot_scores[r] = s_slot;
        const float n = slot_start<K>(rs, s_slot, rf.bias);
        if (hv.slot_v)
            for (int e = 0; e < HS; ++e) acc[r * HS + e] = n * hv.slot_v[e];
    }
    float* s = sc.s.data();
    for (int t0 = st.first_tile(KB); t0 < st.c1; t0 += KB) {
        const int cols = std::min(KB, st.c1 - t0);
        // scores = scale q k^T over the tile (rows, cols), row stride KB
        tile_products::product(rows, score_columns(cols, KB), HS, scale, hv.q, hv.q_stride, 1,
                               hv.k_tiles + static_cast<long>(t0 / KB) * HS * KB, KB, s, KB, false);
        for (int r = 0; r < rows; ++r) {
            const int i = st.i0 + r;
            float* row = s + static_cast<long>(r) * KB;
            const int a = std::max(mask.lo(i), t0) - t0, last = std::min(mask.hi(i, T), t0 + cols - 1) - t0;
            if (a > last) {  // none of this tile's keys is visible to the row
                std::fill(row, row + cols, 0.0f);
                continue;
            }
            if (spec.softcap > 0.0f)
                for (int j = a; j <= last; ++j) row[j] = soft_cap(row[j], spec.softcap);
            if (!bias.empty()) {
                const float* br = bias.row(h, i) + t0;
                for (int j = a; j <= last; ++j) row[j] += br[j];
            }
            // scale-first (softmax rows, check_call): key 0's e^s times F (AttentionMask::first_key_factor)
            if (t0 == 0 && a == 0)
                if (const float f = mask.first_key_factor(i); f != 1.0f) row[0] += std::log(f);
            for (int j = a; j <= last && t0 + j < tracked; ++j) sc.tracked[static_cast<long>(r) * tracked + t0 + j] = row[j];
            const float c = tile_row<K>(sc.rows[r], row, cols, a, last, t0, rf.bias, want_entropy);
            if (c != 1.0f)
                for (int e = 0; e < HS; ++e) acc[r * HS + e] *= c;
        }
        // acc += n(s) v over the tile
        tile_products::product(rows, HS, cols, 1.0f, s, KB, 1, hv.v + t0 * hv.v_stride, hv.v_stride, acc, HS, true);
    }
    // Each row's normaliser, its output and what the forward keeps and taps.
    const float* vb = hv.value_bias;
    for (int r = 0; r < rows; ++r) {
        const int i = st.i0 + r;
        const RowState& rs = sc.rows[r];
        const float S = static_cast<float>(rs.S);
        const float Z = K == AttentionKind::softmax ? S : normaliser(rf, S).Z;
        const float inv = 1.0f / Z;
        float* o = out + i * os;
        for (int e = 0; e < HS; ++e) o[e] = acc[r * HS + e] * inv + (vb ? vb[e] : 0.0f);
        const long row_index = bh * T + i;
        if (stats.shift) stats.shift[row_index] = rs.m;
        if (stats.sum) stats.sum[row_index] = S;
        if (stats.argmax) stats.argmax[row_index] = rs.argmax;
        const float e_neg = K == AttentionKind::softpick ? std::exp(-rs.m) : 0.0f;
        if (taps.slot_weights && has_slot)
            taps.slot_weights[row_index] = row_value<K>(sc.slot_scores[r], rf.bias, rs.m, e_neg) * inv;
        if (!want_entropy && !tracked) continue;
        // The weights as the proxy reads them: x / D, x = |n|; D = Z, or sum x + 1e-8 Z for a proxy.
        const double D = taps.proxy == ProxyKind::none ? static_cast<double>(Z) : rs.X + kProxyEps * Z;
        if (want_entropy) taps.row_entropy[row_index] = static_cast<float>(rs.X > 0.0 ? (rs.X * std::log(D) - rs.Y) / D : 0.0);
        const int lo = mask.lo(i), hi = std::min(mask.hi(i, T), tracked - 1);
        for (int j = lo; j <= hi; ++j)
            column_part[j] += std::abs(row_value<K>(sc.tracked[static_cast<long>(r) * tracked + j], rf.bias, rs.m, e_neg)) / D;
    }
}

// fn(std::integral_constant<AttentionKind, K>) for the design's kind: one instance per kind, so
// that each kind's row loops vectorise (identity and linear_elu share the linear row function).
template <typename Fn>
auto for_kind(AttentionKind kind, Fn&& fn) {
    using K = AttentionKind;
    switch (kind) {
        case K::softmax: return fn(std::integral_constant<K, K::softmax>{});
        case K::sigmoid: return fn(std::integral_constant<K, K::sigmoid>{});
        case K::elu1: return fn(std::integral_constant<K, K::elu1>{});
        case K::softpick: return fn(std::integral_constant<K, K::softpick>{});
        case K::identity:
        case K::linear_elu: break;
    }
    return fn(std::integral_constant<K, K::identity>{});
}

// The keys and values of every (batch, kv head), read by every strip of the heads that share them:
// the keys packed by pack_tiles (k, or linear_elu's phi(k) = elu(k) + 1), (B, NKV, packed_size);
// the values in contiguous rows, (B, NKV, T, HS), so that a tile's values are one run of memory.
struct PackedHeads {
    std::vector<float> keys, values;
    long key_size;
};

PackedHeads pack_heads(const AttentionInputs& in, const AttentionDims& d, bool features, int KB) {
    PackedHeads p;
    p.key_size = packed_size(d.T, d.HS, KB);
    const long qs = d.qkv_stride(), value_size = static_cast<long>(d.T) * d.HS;
    p.keys.resize(static_cast<size_t>(d.B) * d.NKV * p.key_size);
    p.values.resize(static_cast<size_t>(d.B) * d.NKV * value_size);
    #pragma omp parallel
    {
        std::vector<float> phi(features ? static_cast<size_t>(d.T) * d.HS : 0);
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < d.B; ++b)
            for (int kvh = 0; kvh < d.NKV; ++kvh) {
                const float* k = in.qkv + static_cast<long>(b) * d.T * qs + static_cast<long>(d.NH + kvh) * d.HS;
                const float* v = k + static_cast<long>(d.NKV) * d.HS;
                const long head = static_cast<long>(b) * d.NKV + kvh;
                float* keys = p.keys.data() + head * p.key_size;
                if (features) {
                    elu1_features(phi.data(), k, d.T, d.HS, qs);
                    pack_tiles(keys, phi.data(), d.T, d.HS, d.HS, KB);
                } else {
                    pack_tiles(keys, k, d.T, d.HS, qs, KB);
                }
                float* values = p.values.data() + head * value_size;
                for (int t = 0; t < d.T; ++t) std::copy_n(v + t * qs, d.HS, values + static_cast<long>(t) * d.HS);
            }
    }
    return p;
}

}  // namespace

void blockwise_attention_forward(float* out, const AttentionRowStats& stats, const AttentionTaps& taps,
                                 const AttentionInputs& in, const AttentionParams& p, const AttentionDims& d,
                                 const AttentionSpec& spec, const AttentionMask& batch_mask, const BlockwiseTiles& tiles) {
    check_call(stats, false, in, p, d, spec, batch_mask, tiles);
    SINKLAB_CHECK(out, "attention", "the blockwise kernel needs an output buffer (B, T, NH * HS)");
    SINKLAB_CHECK(!taps.column_sums || taps.columns > 0, "attention", "column-sum taps need at least one column");
    const int T = d.T, HS = d.HS, group = d.NH / d.NKV;
    const int QB = std::min(tiles.query_rows, T), KB = tiles.key_columns;
    const int strips = (T + QB - 1) / QB;
    const long qs = d.qkv_stride(), os = d.out_stride();
    const float scale = attention_scale(spec, HS);
    const bool features = spec.kind == AttentionKind::linear_elu;
    const DistanceBias bias(in.bias, d.NH, T);
    const PackedHeads packed = pack_heads(in, d, features, KB);
    const auto strip_fn = for_kind(spec.kind, [](auto k) { return &forward_strip<decltype(k)::value>; });
    const int tracked = taps.column_sums ? std::min(taps.columns, T) : 0;
    const long BH = static_cast<long>(d.B) * d.NH, tasks = BH * strips;
    // Column sums of the tracked keys per (b, h, strip), summed over strips in order afterwards so
    // that the result does not depend on the schedule.
    std::vector<double> column_parts(tracked ? static_cast<size_t>(tasks) * tracked : 0, 0.0);
    #pragma omp parallel
    {
        ForwardScratch sc;
        sc.s.resize(static_cast<size_t>(QB) * KB);
        sc.acc.resize(static_cast<size_t>(QB) * HS);
        if (features) sc.phi_q.resize(static_cast<size_t>(QB) * HS);
        sc.tracked.resize(static_cast<size_t>(QB) * tracked);
        sc.rows.resize(QB);
        sc.slot_scores.resize(QB);
        // The strips further down a causal head see more keys: the longest first balances the threads.
        #pragma omp for schedule(dynamic, 1)
        for (long task = 0; task < tasks; ++task) {
            const int strip = strips - 1 - static_cast<int>(task / BH);
            const long bh = task % BH;
            const int b = static_cast<int>(bh / d.NH), h = static_cast<int>(bh % d.NH), kvh = h / group;
            const AttentionMask mask = batch_mask.sequence(b);
            const Strip st = strip_at(strip * QB, QB, T, mask);
            const float* base = in.qkv + static_cast<long>(b) * T * qs;
            HeadView hv{};
            hv.q_raw = base + static_cast<long>(h) * HS;
            hv.q_stride = qs;
            hv.k_tiles = packed.keys.data() + (static_cast<long>(b) * d.NKV + kvh) * packed.key_size;
            hv.v = packed.values.data() + (static_cast<long>(b) * d.NKV + kvh) * T * HS;
            hv.v_stride = HS;
            const int hp = spec.shared_heads ? 0 : h;
            hv.slot_v = spec.slot == SlotKind::kv ? p.slot_v + static_cast<long>(hp) * HS : nullptr;
            hv.value_bias = spec.value_bias ? p.value_bias + static_cast<long>(hp) * HS : nullptr;
            hv.q = hv.q_raw + st.i0 * qs;
            if (features) {
                elu1_features(sc.phi_q.data(), hv.q, st.rows(), HS, qs);  // phi(q) of the strip's rows
                hv.q = sc.phi_q.data();
                hv.q_stride = HS;
            }
            double* part = tracked ? column_parts.data() + (bh * strips + strip) * tracked : nullptr;
            strip_fn(st, b, h, hv, out + static_cast<long>(b) * T * os + static_cast<long>(h) * HS, sc, d, spec, row_function(spec, p, h), mask, bias, stats, taps, part, KB, scale,
                     p);
        }
    }
    if (tracked)
        for (long bh = 0; bh < BH; ++bh)
            for (int j = 0; j < tracked; ++j) {
                double sum = 0.0;
                for (int s = 0; s < strips; ++s) sum += column_parts[(bh * strips + s) * tracked + j];
                taps.column_sums[bh * taps.columns + j] = static_cast<float>(sum);
            }
    if (taps.column_sums)  // columns beyond the sequence
        for (long bh = 0; bh < BH; ++bh)
            for (int j = tracked; j < taps.columns; ++j) taps.column_sums[bh * taps.columns + j] = 0.0f;
}

// ---- Backward --------------------------------------------------------------------------------

namespace {

struct BackwardScratch {
    std::vector<float> s;     // (QB, KB) scores
    std::vector<float> w;     // (QB, KB) weights
    std::vector<float> g;     // (QB, KB) dL/dw, then dL/ds
    std::vector<float> cap;   // (QB, KB) soft-capping's derivative
    std::vector<float> Dg;    // (QB) D = sum_j w_j g_j = dout . (out - value bias)
    std::vector<float> ws, gs, s_slot;  // (QB) the slot's weight, dL/dw* = dout . v*, its score
};

// One head's strip: rows [i0, i1) against their keys, tile by tile; accumulates dq (rows),
// dk and dv (the task's kv head), and the parameter partials of (b, h).
template <AttentionKind K>
void backward_strip(const Strip& st, int b, int h, const HeadView& hv, const float* out, const float* dO, float* dq,
                    long dq_stride,
                    float* dk, long dk_stride, float* dv, float* dq_raw, BackwardScratch& sc, const AttentionDims& d,
                    const AttentionSpec& spec, const RowFunction& rf, const AttentionMask& mask,
                    const DistanceBias& bias, const AttentionRowStats& stats, ParamPartials& part, int KB, float scale,
                    const AttentionParams& p, const AttentionParamGrads& dp) {
    const int T = d.T, HS = d.HS, rows = st.rows(), NH = d.NH;
    const long qs = d.qkv_stride(), os = d.out_stride();
    const long bh = static_cast<long>(b) * NH + h;
    const bool slot_keyed = spec.slot == SlotKind::kv || spec.slot == SlotKind::k;
    const int hp = spec.shared_heads ? 0 : h;
    const float* ks = slot_keyed ? p.slot_k + static_cast<long>(hp) * HS : nullptr;
    float* s = sc.s.data();
    float* w = sc.w.data();
    float* g = sc.g.data();
    // The scores of a tile (rows, cols) into s, soft-capped (the cap's derivative into sc.cap) and
    // biased, and the weights recomputed from the row statistics into w (zero where not visible).
    const auto tile_weights = [&](int t0, int cols) {
        tile_products::product(rows, score_columns(cols, KB), HS, scale, hv.q, hv.q_stride, 1,
                               hv.k_tiles + static_cast<long>(t0 / KB) * HS * KB, KB, s, KB, false);
        for (int r = 0; r < rows; ++r) {
            const int i = st.i0 + r;
            const long ri = bh * T + i;
            float* srow = s + static_cast<long>(r) * KB;
            float* wrow = w + static_cast<long>(r) * KB;
            const int a = std::max(mask.lo(i), t0) - t0, last = std::min(mask.hi(i, T), t0 + cols - 1) - t0;
            std::fill(wrow, wrow + cols, 0.0f);
            if (a > last) continue;
            if (spec.softcap > 0.0f) {
                float* crow = sc.cap.data() + static_cast<long>(r) * KB;
                for (int j = a; j <= last; ++j) {
                    srow[j] = soft_cap(srow[j], spec.softcap);
                    crow[j] = soft_cap_derivative(srow[j], spec.softcap);
                }
            }
            if (!bias.empty()) {
                const float* br = bias.row(h, i) + t0;
                for (int j = a; j <= last; ++j) srow[j] += br[j];
            }
            const float m = stats.shift ? stats.shift[ri] : 0.0f;
            const float S = stats.sum ? stats.sum[ri] : 0.0f;
            const float Z = K == AttentionKind::softmax ? S : normaliser(rf, S).Z;
            const float inv = 1.0f / Z, e_neg = K == AttentionKind::softpick ? std::exp(-m) : 0.0f, bb = rf.bias;
            #pragma omp simd
            for (int j = a; j <= last; ++j) wrow[j] = row_value<K>(srow[j], bb, m, e_neg) * inv;
        }
    };
    // Per row: the slot's weight and dL/dw* = dout . v*; D = sum_j w_j g_j over the keys and the
    // slot, which is dout . (out - value bias) (FlashAttention's shortcut: no pass over the keys).
    for (int r = 0; r < rows; ++r) {
        const int i = st.i0 + r;
        const long ri = bh * T + i;
        const float* o = out + i * os;
        const float* go = dO + i * os;
        float D = 0.0f;
        for (int e = 0; e < HS; ++e) D += go[e] * (o[e] - (hv.value_bias ? hv.value_bias[e] : 0.0f));
        sc.Dg[r] = D;
        sc.ws[r] = sc.gs[r] = 0.0f;
        if (!spec.has_slot()) continue;
        const float m = stats.shift ? stats.shift[ri] : 0.0f;
        const float S = stats.sum ? stats.sum[ri] : 0.0f;
        const float Z = K == AttentionKind::softmax ? S : normaliser(rf, S).Z;
        sc.s_slot[r] = slot_score(spec, p, hv.q_raw + i * qs, h, HS, scale);
        sc.ws[r] = row_value<K>(sc.s_slot[r], rf.bias, m, std::exp(-m)) / Z;
        if (hv.slot_v)
            for (int e = 0; e < HS; ++e) sc.gs[r] += go[e] * hv.slot_v[e];
    }
    // The slot's gradient.
    for (int r = 0; r < rows && spec.has_slot(); ++r) {
        const int i = st.i0 + r;
        const long ri = bh * T + i;
        const float* go = dO + i * os;
        const float D = sc.Dg[r], ws = sc.ws[r], gs = sc.gs[r];
        const float m = stats.shift ? stats.shift[ri] : 0.0f;
        const float S = stats.sum ? stats.sum[ri] : 0.0f;
        const Normaliser nz = K == AttentionKind::softmax ? Normaliser{S, 1.0f} : normaliser(rf, S);
        const float inv = 1.0f / nz.Z;
        float ds_slot;
        if constexpr (K == AttentionKind::softmax) {
            ds_slot = ws * (gs - D);
        } else {
            const RowEntry e = row_entry<K>(sc.s_slot[r], rf.bias, m, std::exp(-m));
            ds_slot = (e.dn * gs - e.dd * nz.dZ * D) * inv;
            if (K == AttentionKind::softpick && stats.argmax[ri] == kSlotArgmax) ds_slot -= kNormEps * D * inv;
        }
        // out = ... + w* v*: dv* += w* dout
        if (hv.slot_v && dp.slot_v)
            for (int e = 0; e < HS; ++e) part.slot_v[bh * HS + e] += ws * go[e];
        // slot score = scale q.k*: dq += scale ds* k*, dk* += scale ds* q ; or the logit itself
        if (ks) {
            for (int e = 0; e < HS; ++e) dq_raw[i * qs + e] += scale * ds_slot * ks[e];
            if (dp.slot_k)
                for (int e = 0; e < HS; ++e) part.slot_k[bh * HS + e] += scale * ds_slot * hv.q_raw[i * qs + e];
        }
        if (spec.slot == SlotKind::score && dp.slot_score) part.slot_score[bh] += ds_slot;
        if (spec.sigmoid_bias_learnable && dp.sigmoid_bias) part.sigmoid_bias[bh] += ds_slot;
    }
    const bool relative_grad = !part.distance_bias.empty();
    for (int t0 = st.first_tile(KB); t0 < st.c1; t0 += KB) {
        const int cols = std::min(KB, st.c1 - t0);
        tile_weights(t0, cols);
        // out = w v: dv += w^T dout ; dL/dw = dout v^T
        tile_products::product(cols, HS, rows, 1.0f, w, 1, KB, dO + st.i0 * os, os, dv + t0 * qs, qs, true);
        tile_products::product(rows, score_columns(cols, KB), HS, 1.0f, dO + st.i0 * os, os, 1,
                               hv.v_tiles + static_cast<long>(t0 / KB) * HS * KB, KB, g, KB, false);
        // w = rows of f(scores): dL/ds
        for (int r = 0; r < rows; ++r) {
            const int i = st.i0 + r;
            const long ri = bh * T + i;
            float* srow = s + static_cast<long>(r) * KB;
            float* wrow = w + static_cast<long>(r) * KB;
            float* grow = g + static_cast<long>(r) * KB;
            const int a = std::max(mask.lo(i), t0) - t0, last = std::min(mask.hi(i, T), t0 + cols - 1) - t0;
            if (a > last) {
                std::fill(grow, grow + cols, 0.0f);
                continue;
            }
            const float D = sc.Dg[r];
            if constexpr (K == AttentionKind::softmax) {
                #pragma omp simd
                for (int j = a; j <= last; ++j) grow[j] = wrow[j] * (grow[j] - D);
            } else {
                const float m = stats.shift ? stats.shift[ri] : 0.0f;
                const float S = stats.sum ? stats.sum[ri] : 0.0f;
                const Normaliser nz = normaliser(rf, S);
                const float inv = 1.0f / nz.Z, c = nz.dZ * D, e_neg = K == AttentionKind::softpick ? std::exp(-m) : 0.0f;
                const float bb = rf.bias;
                #pragma omp simd
                for (int j = a; j <= last; ++j) {
                    const RowEntry e = row_entry<K>(srow[j], bb, m, e_neg);
                    grow[j] = (e.dn * grow[j] - e.dd * c) * inv;
                }
                // softpick: its epsilon sits in the shifted denominator, so w depends on m, the
                // argmax's score: dL/dm = -eps / Z sum_k w_k g_k (docs/attention-designs.md)
                if constexpr (K == AttentionKind::softpick) {
                    const int at = stats.argmax[ri] - t0;
                    if (at >= a && at <= last) grow[at] -= kNormEps * D * inv;
                }
            }
            std::fill(grow, grow + a, 0.0f);
            std::fill(grow + last + 1, grow + cols, 0.0f);
            // f = sigmoid(s + b): dL/db = the row's sum of dL/ds
            if (spec.sigmoid_bias_learnable && dp.sigmoid_bias) {
                float sum = 0.0f;
                for (int j = a; j <= last; ++j) sum += grow[j];
                part.sigmoid_bias[bh] += sum;
            }
            // scores = softcap(scale q.k) + bias(j - i): dL/dbias = dL/dscores
            if (relative_grad) {
                double* dd = DistanceBias::row(part.distance_bias.data() + b * NH * bias.width(), h, i, T) + t0;
                for (int j = a; j <= last; ++j) dd[j] += grow[j];
            }
            // and dL/d(scale q.k) = dL/dscores (1 - (capped / c)^2)
            if (spec.softcap > 0.0f) {
                const float* crow = sc.cap.data() + static_cast<long>(r) * KB;
                for (int j = a; j <= last; ++j) grow[j] *= crow[j];
            }
        }
        // scores = scale q k^T: dq += scale ds k ; dk += scale ds^T q
        tile_products::product(rows, HS, cols, scale, g, KB, 1, hv.k + t0 * hv.k_stride, hv.k_stride,
                               dq + st.i0 * dq_stride, dq_stride, true);
        tile_products::product(cols, HS, rows, scale, g, 1, KB, hv.q, hv.q_stride, dk + t0 * dk_stride, dk_stride, true);
    }
}



}  // namespace

void blockwise_attention_backward(float* dqkv, const AttentionParamGrads& dp, const float* dout, const float* out,
                                  const AttentionInputs& in, const AttentionParams& p, const AttentionRowStats& stats,
                                  const AttentionDims& d, const AttentionSpec& spec, const AttentionMask& batch_mask,
                                  GradWrite dqkv_write, const BlockwiseTiles& tiles) {
    check_call(stats, true, in, p, d, spec, batch_mask, tiles);
    SINKLAB_CHECK(dqkv && dout && out, "attention", "the blockwise backward needs dqkv, dout and the forward's output");
    const int B = d.B, T = d.T, NH = d.NH, HS = d.HS, group = d.NH / d.NKV;
    const int QB = std::min(tiles.query_rows, T), KB = tiles.key_columns;
    const long qs = d.qkv_stride(), os = d.out_stride();
    const float scale = attention_scale(spec, HS);
    const bool features = spec.kind == AttentionKind::linear_elu;
    const DistanceBias bias(in.bias, NH, T);
    const auto strip_fn = for_kind(spec.kind, [](auto k) { return &backward_strip<decltype(k)::value>; });
    ParamPartials part(spec, dp, in.bias, B, NH, HS, bias.width());
    // Parallel over (batch, kv head): the query heads of one group all write that group's dk, dv.
    #pragma omp parallel
    {
        BackwardScratch sc;
        sc.s.resize(static_cast<size_t>(QB) * KB);
        sc.w.resize(sc.s.size());
        sc.g.resize(sc.s.size());
        if (spec.softcap > 0.0f) sc.cap.resize(sc.s.size());
        sc.Dg.resize(QB);
        sc.ws.resize(QB);
        sc.gs.resize(QB);
        sc.s_slot.resize(QB);
        const FeatureBuffers features_of_task(features, T, HS);  // linear_elu only; null pointers otherwise
        float *phi_q = features_of_task.phi_q, *phi_k = features_of_task.phi_k;
        float *dphi_q = features_of_task.dphi_q, *dphi_k = features_of_task.dphi_k;
        std::vector<float> k_tiles(packed_size(T, HS, KB)), v_tiles(k_tiles.size());  // the task's keys and values
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; ++b) {
            for (int kvh = 0; kvh < d.NKV; ++kvh) {
                const AttentionMask mask = batch_mask.sequence(b);
                const long base = static_cast<long>(b) * T * qs;
                const auto [k, v, dk, dv] = kv_head_columns(in.qkv + base, dqkv + base, kvh, NH, d.NKV, HS);
                if (dqkv_write == GradWrite::overwrite) zero_task_columns(dqkv + base, T, qs, kvh, group, NH, d.NKV, HS);
                if (features) {
                    elu1_features(phi_k, k, T, HS, qs);
                    std::memset(dphi_k, 0, sizeof(float) * T * HS);
                    pack_tiles(k_tiles.data(), phi_k, T, HS, HS, KB);
                } else {
                    pack_tiles(k_tiles.data(), k, T, HS, qs, KB);
                }
                pack_tiles(v_tiles.data(), v, T, HS, qs, KB);
                for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
                    const int hp = spec.shared_heads ? 0 : h;
                    HeadView hv{};
                    hv.q_raw = in.qkv + base + static_cast<long>(h) * HS;
                    const float* q_rows = features ? phi_q : hv.q_raw;
                    hv.q_stride = features ? HS : qs;
                    hv.k = features ? phi_k : k;
                    hv.k_stride = features ? HS : qs;
                    hv.k_tiles = k_tiles.data();
                    hv.v_tiles = v_tiles.data();
                    hv.v = v;
                    hv.v_stride = qs;
                    hv.slot_v = spec.slot == SlotKind::kv ? p.slot_v + static_cast<long>(hp) * HS : nullptr;
                    hv.value_bias = spec.value_bias ? p.value_bias + static_cast<long>(hp) * HS : nullptr;
                    const float* o = out + static_cast<long>(b) * T * os + static_cast<long>(h) * HS;
                    float* dq_raw = dqkv + base + static_cast<long>(h) * HS;
                    float* dq = features ? dphi_q : dq_raw;
                    const long dq_stride = features ? HS : qs;
                    if (features) {
                        elu1_features(phi_q, hv.q_raw, T, HS, qs);
                        std::memset(dphi_q, 0, sizeof(float) * T * HS);
                    }
                    const float* dO = dout + static_cast<long>(b) * T * os + static_cast<long>(h) * HS;
                    const RowFunction rf = row_function(spec, p, h);
                    for (int i0 = 0; i0 < T; i0 += QB) {
                        hv.q = q_rows + i0 * hv.q_stride;
                        strip_fn(strip_at(i0, QB, T, mask), b, h, hv, o, dO, dq, dq_stride, features ? dphi_k : dk,
                                 features ? HS : qs, dv, dq_raw, sc, d, spec, rf, mask, bias, stats, part, KB, scale, p,
                                 dp);
                    }
                    if (features) elu1_features_backward(dq_raw, dphi_q, phi_q, hv.q_raw, T, HS, qs);
                }
                if (features) elu1_features_backward(dk, dphi_k, phi_k, k, T, HS, qs);
            }
        }
    }
    part.reduce_into(dp, spec, bias, dout, T, os);
}

}  // namespace sinklab
