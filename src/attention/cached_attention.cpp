#include "attention/cached_attention.h"

#include <algorithm>
#include <vector>

#include "attention/row_arithmetic.h"
#include "attention/score_bias.h"
#include "core/error.h"
#include "ops/position_bias.h"

namespace sinklab {

using namespace attention_rows;

namespace {

// The rows of one kv head read through KeyValueTiles as j walks up to `last`: a tile of up to
// kCachedTileRows rows is fetched (rotated, dequantized) when j leaves the current one.
class TileCursor {
public:
    using Fetch = const float* (KeyValueTiles::*)(int, int, int, float*, long&) const;
    TileCursor(const KeyValueTiles* tiles, Fetch fetch, std::vector<float>& scratch)
        : tiles_(tiles), fetch_(fetch), scratch_(scratch) {}
    void reset(int head, int last) {
        head_ = head;
        last_ = last;
        start_ = end_ = 0;
    }
    const float* row(int j) {
        if (j < start_ || j >= end_) {
            start_ = j;
            end_ = std::min(last_ + 1, j + kCachedTileRows);
            base_ = (tiles_->*fetch_)(head_, start_, end_, scratch_.data(), stride_);
        }
        return base_ + static_cast<long>(j - start_) * stride_;
    }

private:
    const KeyValueTiles* tiles_;
    Fetch fetch_;
    std::vector<float>& scratch_;
    int head_ = 0, last_ = 0, start_ = 0, end_ = 0;
    const float* base_ = nullptr;
    long stride_ = 0;
};

}  // namespace

void cached_attention_forward(const CachedAttentionOutputs& o, const CachedAttentionInputs& in,
                              const AttentionParams& p, const CachedAttentionDims& d, const AttentionSpec& spec,
                              const AttentionMask& mask) {
    spec.validate();
    mask.first_keys.validate();
    SINKLAB_CHECK(d.NKV > 0 && d.NH % d.NKV == 0, "attention", "{} query heads cannot share {} kv heads", d.NH, d.NKV);
    SINKLAB_CHECK(d.n_queries > 0 && d.first_query >= 0 && d.first_query + d.n_queries <= d.n_keys, "attention",
                  "cached attention: {} queries from key index {} do not fit {} keys", d.n_queries, d.first_query,
                  d.n_keys);
    SINKLAB_CHECK(in.q && ((in.k && in.v) || in.tiles) && o.out, "attention",
                  "cached attention needs q, k and v (or their tiles) and an output buffer");
    SINKLAB_CHECK(spec.kind != AttentionKind::linear_elu || in.bias.kind == ScoreBiasKind::none, "attention",
                  "linear_elu is a kernel design: an additive score bias (ALiBi, relative) does not apply");
    for (const AttentionParamInfo& info : attention_param_infos(spec, d.NH, d.HS))
        SINKLAB_CHECK(p.*info.value, "attention", "this attention design needs its parameter {} in AttentionParams",
                      info.name);
    SINKLAB_CHECK(in.bias.kind != ScoreBiasKind::relative || in.bias.relative_table, "attention",
                  "a relative score bias needs its bucket table (kRelativeBuckets, NH)");
    const int group = d.NH / d.NKV, HS = d.HS, nq = d.n_queries, nk = d.n_keys;
    const float scale = attention_scale(spec, HS);
    const bool features = spec.kind == AttentionKind::linear_elu;
    const std::vector<float> slopes = in.bias.kind == ScoreBiasKind::alibi ? alibi_slopes(d.NH) : std::vector<float>{};
    // Parallel over heads: each owns its rows of the outputs and its keys' attention sums.
    #pragma omp parallel
    {
        std::vector<float> scratch(o.weights ? 0 : nk);
        std::vector<float> phi(features ? 2L * HS : 0);  // linear_elu: phi(q), phi(k) of one pair
        // rows read through tiles (a cache that rotates or dequantizes them): one tile of keys, one of values
        std::vector<float> key_tile(in.tiles ? static_cast<size_t>(kCachedTileRows) * HS : 0), value_tile(key_tile.size());
        TileCursor key_rows(in.tiles, &KeyValueTiles::keys, key_tile), value_rows(in.tiles, &KeyValueTiles::values, value_tile);
        #pragma omp for schedule(static)
        for (int h = 0; h < d.NH; ++h) {
            const long kv_offset = static_cast<long>(h / group) * HS;
            const int hp = spec.shared_heads ? 0 : h;
            const float* vs = spec.slot == SlotKind::kv ? p.slot_v + static_cast<long>(hp) * HS : nullptr;
            const float* vb = spec.value_bias ? p.value_bias + static_cast<long>(hp) * HS : nullptr;
            const RowFunction rf = row_function(spec, p, h);
            for (int i = 0; i < nq; ++i) {
                const float* q = in.q + static_cast<long>(i) * in.q_stride + static_cast<long>(h) * HS;
                float* row = o.weights ? o.weights + (static_cast<long>(h) * nq + i) * nk : scratch.data();
                const int query = d.first_query + i;
                const int lo = mask.lo(query), hi = mask.hi(query, nk);
                const int pi = in.query_positions ? in.query_positions[i] : query;
                if (features) elu1_features(phi.data(), q, 1, HS, HS);
                if (in.tiles) key_rows.reset(h / group, hi);
                // the scores s_j = scale q.k_j (phi(q).phi(k_j) for linear_elu), soft-capped, + bias(p_i, p_j)
                for (int j = lo; j <= hi; ++j) {
                    const float* k = in.tiles ? key_rows.row(j) : in.k + static_cast<long>(j) * in.kv_stride + kv_offset;
                    const float* a = q;
                    if (features) {
                        elu1_features(phi.data() + HS, k, 1, HS, HS);
                        a = phi.data();
                        k = phi.data() + HS;
                    }
                    float dot = 0.0f;
                    #pragma omp simd reduction(+ : dot)
                    for (int e = 0; e < HS; ++e) dot += a[e] * k[e];
                    float s = dot * scale;
                    if (spec.softcap > 0.0f) s = soft_cap(s, spec.softcap);
                    if (in.bias.kind != ScoreBiasKind::none)
                        s += score_bias_value(in.bias, slopes, h, d.NH, pi, in.key_positions ? in.key_positions[j] : j);
                    row[j] = s;
                }
                float s_slot = 0.0f;
                if (spec.has_slot()) s_slot = slot_score(spec, p, q, h, HS, scale);
                const Fill fill = o.weights ? Fill{0, nk} : Fill{lo, hi + 1};
                const RowResult r = row_forward(rf, row, fill, lo, hi, spec.has_slot() ? &s_slot : nullptr,
                                                  mask.first_key_factor(query));
                if (o.slot_weights && spec.has_slot()) o.slot_weights[static_cast<long>(h) * nq + i] = r.slot_weight;
                if (o.key_attention)
                    for (int j = lo; j <= hi; ++j) o.key_attention[static_cast<long>(h) * nk + j] += row[j];
                // out_h = sum_j w_j v_j + w* v* + value bias
                float* out = o.out + static_cast<long>(i) * o.out_stride + static_cast<long>(h) * HS;
                for (int e = 0; e < HS; ++e) out[e] = vb ? vb[e] : 0.0f;
                if (vs)
                    for (int e = 0; e < HS; ++e) out[e] += r.slot_weight * vs[e];
                if (in.tiles) value_rows.reset(h / group, hi);
                for (int j = lo; j <= hi; ++j) {
                    const float* v = in.tiles ? value_rows.row(j) : in.v + static_cast<long>(j) * in.kv_stride + kv_offset;
                    const float w = row[j];
                    #pragma omp simd
                    for (int e = 0; e < HS; ++e) out[e] += w * v[e];
                }
            }
        }
    }
}

}  // namespace sinklab
