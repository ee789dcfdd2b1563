#pragma once
// The KV cache of one sequence: every layer's keys and values of the tokens it holds, so that new
// tokens attend to them instead of recomputing the past (Transformer::forward_step). Inference only.
//
// Each held row carries the position it is attended at: its RoPE angle, its distance for the model's
// sliding window. Keys are held *before* RoPE and rotated at their row's position inside the
// attention loop, so a streaming cache re-indexes what it holds by rewriting positions alone
// (StreamingLLM section 3.2: a cache holding the tokens [0,1,2,3,6,7,8] decodes token 9 at positions
// 0..7; stream/streaming_cache.h). Rows are unordered, their positions say where they are: removing
// rows moves the last rows into the holes, so an eviction costs the rows it removes, not the rows it
// keeps.
//
// Precision (ops/kv_quant.h): float32, or int8 / int4 in KIVI's layout. A quantized cache holds a
// few rows in float32 (new rows, until their key group of kKvGroup rows is quantized, and rows its
// owner keeps exact) and the rest as codes; quantize() turns float rows into codes once, and the
// kernel dequantizes a tile of rows at a time as it reads them (never a whole-cache copy).
// forward_step therefore runs its blocks without RoPE and rotates the queries itself: its qkv tap
// shows queries and keys before RoPE.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "attention/cached_attention.h"
#include "core/tensor.h"
#include "model/config.h"
#include "ops/kv_quant.h"
#include "ops/rope.h"

namespace sinklab {

struct KvStorage {
    KvPrecision precision = KvPrecision::f32;
    // Quantized caches: rows that may be float32 at once (exact rows, rows waiting for their key
    // group, a step's new rows); float32 caches hold every row in float32.
    int float_rows = 0;
};

class KVCache {
public:
    // Room for `capacity` tokens of a model with this configuration, allocated once.
    KVCache(const ModelConfig& config, int capacity, const KvStorage& storage = {});

    int capacity() const { return capacity_; }
    int length() const { return length_; }  // tokens held
    int layers() const { return layers_; }
    long row_width() const { return row_width_; }  // NKV * HS channels per token and layer
    KvPrecision precision() const { return precision_; }
    const std::vector<int>& positions() const { return positions_; }  // (length)
    // The held rows' positions followed by a step's new ones, in scratch the cache keeps: the
    // positions the step's keys are rotated and biased at.
    const std::vector<int>& key_positions_with(std::span<const int> incoming);
    // Bytes the cache holds room for: codes, ranges and float rows (its whole allocation).
    size_t bytes() const;
    void clear();

    // Gives rows [length, length + n) float32 room for a step to write their keys and values.
    void reserve(int n);
    // Marks `n` more rows as held (written at [length, length + n) in every layer) with their positions.
    void commit(int n, const int* positions);
    // The float32 key (before RoPE) and value of a float row (row_width channels).
    float* key_row(int layer, int row);
    float* value_row(int layer, int row);
    const float* key_row(int layer, int row) const;
    const float* value_row(int layer, int row) const;
    bool is_float(int row) const { return slot_[row] >= 0; }

    // Moves held row `row` to another position (re-indexing).
    void set_position(int row, int position);
    // Drops the given held rows (distinct, any order): kept rows from the top of the cache move into
    // the holes; moved(from, to) is called for each, so that the owner can follow its rows.
    void remove_rows(std::span<const int> rows, const std::function<void(int from, int to)>& moved = {});
    // Quantized caches: turns the given float rows into codes (their keys as one per-channel group,
    // their values row by row) and frees their float room.
    void quantize(std::span<const int> rows);

    // The keys of kv head `head` for rows [j0, j1) as attention reads them: dequantized, and rotated
    // at `positions` when `rope` is given. A pointer into the cache when nothing needs doing, else
    // into `scratch` ((j1 - j0) x HS); `stride` receives the rows' stride.
    const float* key_tile(int layer, int head, int HS, int j0, int j1, const int* positions, const RopeTable* rope,
                          float* scratch, long& stride) const;
    const float* value_tile(int layer, int head, int HS, int j0, int j1, float* scratch, long& stride) const;

private:
    size_t code_bytes() const { return kv_code_bytes(row_width_, kv_bits(precision_)); }
    int value_groups() const { return static_cast<int>((row_width_ + kKvGroup - 1) / kKvGroup); }
    float* key_range(int group, int layer);  // (2, row_width): minima then steps of a key group in a layer
    const float* key_range(int group, int layer) const;
    void release_group(int group);
    void move_row(int from, int to);

    int layers_, capacity_;
    long row_width_;
    KvPrecision precision_;
    int length_ = 0;
    std::vector<int> positions_;
    std::vector<int> key_positions_;  // key_positions_with's scratch
    // float rows: (L, float_slots, row_width); slot_[row] is a row's slot (float32: the row itself), -1 when quantized
    int float_slots_ = 0;
    Tensor float_keys_, float_values_;
    std::vector<int> slot_;
    std::vector<int> free_slots_;
    // quantized rows
    std::vector<uint8_t> key_codes_, value_codes_;  // (L, capacity, code_bytes)
    std::vector<float> value_ranges_;               // (L, capacity, 2, value_groups): minima, then steps
    std::vector<int> key_group_;                    // (capacity) a quantized row's key group
    std::vector<float> key_ranges_;                 // (groups, L, 2, row_width)
    std::vector<int> group_rows_;                   // rows held per group
    std::vector<int> free_groups_;
    std::vector<char> removed_;  // remove_rows' scratch
};

// One layer of a cache as the cache kernel reads it (attention/cached_attention.h): a tile of rows
// of one kv head at a time, dequantized, and its keys rotated at `positions` when `rope` is given.
class CachedLayerTiles final : public KeyValueTiles {
public:
    CachedLayerTiles(const KVCache& cache, int layer, int HS, const int* positions, const RopeTable* rope)
        : cache_(cache), layer_(layer), HS_(HS), positions_(positions), rope_(rope) {}
    const float* keys(int head, int j0, int j1, float* scratch, long& stride) const override {
        return cache_.key_tile(layer_, head, HS_, j0, j1, positions_, rope_, scratch, stride);
    }
    const float* values(int head, int j0, int j1, float* scratch, long& stride) const override {
        return cache_.value_tile(layer_, head, HS_, j0, j1, scratch, stride);
    }

private:
    const KVCache& cache_;
    int layer_, HS_;
    const int* positions_;
    const RopeTable* rope_;
};

}  // namespace sinklab
