#pragma once
// Byte-level training data: windows of a corpus (io/corpus.h) as token ids and targets, the batch
// sampler, the validation windows.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/rng.h"
#include "io/corpus.h"

namespace sinklab {

constexpr int32_t kByteBos = 256;  // the optional fixed first token of byte-level models

// Fills tokens and targets (B, T) from bytes. Without BOS a window is T+1 bytes (inputs are the
// first T, targets the last T); with BOS the inputs are [BOS, b_0 .. b_{T-2}] and the targets b_0 .. b_{T-1}.
void fill_window(const uint8_t* bytes, int T, bool bos, int32_t* tokens, int32_t* targets);
// Bytes a window consumes.
inline int window_bytes(int T, bool bos) { return bos ? T : T + 1; }

// Training batches: windows at uniformly random offsets, from a seeded generator whose state is
// part of the checkpoint (exact resume).
class BatchSampler {
public:
    BatchSampler(const std::vector<uint8_t>& bytes, int B, int T, bool bos, uint64_t seed);
    void next(int32_t* tokens, int32_t* targets) { next(tokens, targets, 0, B_); }
    // Rows [first, first + rows) of the next batch, into tokens and targets (rows, T): the generator
    // draws the whole batch's offsets, so that the ranks of a data-parallel run, each filling its
    // own rows, share one stream of batches, the stream of a single process.
    void next(int32_t* tokens, int32_t* targets, int first, int rows);
    Rng& rng() { return rng_; }

private:
    const std::vector<uint8_t>& bytes_;
    int B_, T_;
    bool bos_;
    Rng rng_;
};

// Offsets of non-overlapping validation windows covering `n_bytes`; when `limit` > 0 and fewer
// than all, `limit` windows spread evenly over the split (deterministic).
std::vector<size_t> validation_windows(size_t n_bytes, int T, bool bos, int limit);

}  // namespace sinklab
