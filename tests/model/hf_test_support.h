#pragma once
// Helpers shared by the checkpoint tests: fixture paths, scratch folders, the taps of one forward,
// tolerance checks that report the worst entry, and greedy decoding with and without a KV cache.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "../support/scratch_dir.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "model/kv_cache.h"
#include "model/transformer.h"

namespace sinklab::test {

namespace fs = std::filesystem;

inline fs::path fixture(const std::string& relative) {
    return fs::path(SINKLAB_SOURCE_DIR) / "tests" / "fixtures" / relative;
}

// The tensors every reference.safetensors of tests/fixtures holds (hf/<arch>/ and gpt_oss/), no
// batch dimension: input_ids [T], logits [T, V], attentions [L, H, T, T] (gpt_oss: [L, H, T, T + 1]),
// hidden_states [L + 1, T, D], layer_outputs [L, T, D], greedy_ids [N] and greedy_logits [N, V].
struct FixtureReference {
    std::vector<int32_t> input_ids, greedy_ids;
    Tensor logits, attentions, hidden_states, layer_outputs, greedy_logits;
};

inline FixtureReference read_fixture_reference(const SafetensorsFile& file) {
    FixtureReference r;
    for (int64_t id : file.read_i64("input_ids")) r.input_ids.push_back(static_cast<int32_t>(id));
    for (int64_t id : file.read_i64("greedy_ids")) r.greedy_ids.push_back(static_cast<int32_t>(id));
    r.logits = file.read_f32("logits");
    r.attentions = file.read_f32("attentions");
    r.hidden_states = file.read_f32("hidden_states");
    r.layer_outputs = file.read_f32("layer_outputs");
    r.greedy_logits = file.read_f32("greedy_logits");
    return r;
}

// Every tap of one forward, by name and layer.
class Taps : public TensorObserver {
public:
    void observe(Tap tap, int layer, const float* data, const Shape& shape) override {
        entries.push_back({std::string(tap_name(tap)), layer, shape, std::vector<float>(data, data + shape_numel(shape))});
    }
    const std::vector<float>& get(std::string_view name, int layer = -1) const {
        for (const auto& e : entries)
            if (e.name == name && e.layer == layer) return e.data;
        throw Error("test", "no tap " + std::string(name) + " of layer " + std::to_string(layer));
    }
    struct Entry {
        std::string name;
        int layer;
        Shape shape;
        std::vector<float> data;
    };
    std::vector<Entry> entries;
};

// |a - b| <= abs_tol + rel_tol |b| for every entry; on failure, reports the worst one.
inline ::testing::AssertionResult all_close(const float* actual, const float* expected, size_t n, double abs_tol,
                                            double rel_tol) {
    size_t worst = 0;
    double worst_excess = -1.0, max_error = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double err = std::abs(static_cast<double>(actual[i]) - expected[i]);
        if (!(err == err)) return ::testing::AssertionFailure() << "NaN at entry " << i;
        max_error = std::max(max_error, err);
        const double excess = err - (abs_tol + rel_tol * std::abs(static_cast<double>(expected[i])));
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    if (worst_excess <= 0) return ::testing::AssertionSuccess() << "max abs error " << max_error;
    return ::testing::AssertionFailure() << "entry " << worst << " is " << actual[worst] << ", expected "
                                         << expected[worst] << " (max abs error " << max_error << " over " << n
                                         << " entries)";
}

inline int32_t argmax(const float* row, int n) {
    return static_cast<int32_t>(std::max_element(row, row + n) - row);  // the first maximum, as torch.argmax
}

// Greedy continuation by full recompute of the whole sequence at every step.
inline std::vector<int32_t> greedy_full(Transformer& model, std::vector<int32_t> ids, int steps,
                                        std::vector<std::vector<float>>* step_logits = nullptr) {
    const int V = model.config().vocab_size;
    std::vector<int32_t> generated;
    for (int s = 0; s < steps; ++s) {
        const int T = static_cast<int>(ids.size());
        model.forward(ids.data(), nullptr, 1, T, ForwardOptions{false});
        const float* last = model.logits() + static_cast<size_t>(T - 1) * V;
        if (step_logits) step_logits->emplace_back(last, last + V);
        generated.push_back(argmax(last, V));
        ids.push_back(generated.back());
    }
    return generated;
}

// Greedy continuation with a KV cache: the prompt in one step, then one token per step.
inline std::vector<int32_t> greedy_cached(Transformer& model, const std::vector<int32_t>& prompt, int steps,
                                          std::vector<std::vector<float>>* step_logits = nullptr) {
    const int V = model.config().vocab_size, P = static_cast<int>(prompt.size());
    KVCache cache(model.config(), P + steps);
    std::vector<int> positions(P);
    for (int i = 0; i < P; ++i) positions[i] = i;
    const float* logits = model.forward_step(prompt.data(), positions.data(), P, cache);
    const float* last = logits + static_cast<size_t>(P - 1) * V;
    std::vector<int32_t> generated;
    for (int s = 0; s < steps; ++s) {
        if (step_logits) step_logits->emplace_back(last, last + V);
        generated.push_back(argmax(last, V));
        if (s + 1 == steps) break;
        const int position = P + s;
        last = model.forward_step(&generated.back(), &position, 1, cache);
    }
    return generated;
}

// The reference's hidden states against the taps of one forward: the embeddings, the outputs of
// blocks 0..L-2 and the final norm's output.
inline void expect_hidden_states_match(const Taps& taps, const FixtureReference& ref, int L, int T, int D,
                                       double abs_tol, double rel_tol) {
    const size_t TD = static_cast<size_t>(T) * D;
    EXPECT_TRUE(all_close(taps.get("embed").data(), ref.hidden_states.data(), TD, abs_tol, rel_tol)) << "embeddings";
    for (int l = 1; l < L; ++l)
        EXPECT_TRUE(all_close(taps.get("block_out", l - 1).data(), ref.hidden_states.data() + l * TD, TD, abs_tol,
                              rel_tol))
            << "hidden state " << l;
    EXPECT_TRUE(all_close(taps.get("final_norm").data(), ref.hidden_states.data() + L * TD, TD, abs_tol, rel_tol))
        << "final norm";
}

// The reference's greedy ids exactly and its logits at each step, by full recompute and through the
// KV cache.
inline void expect_greedy_matches(Transformer& model, const FixtureReference& ref, double abs_tol, double rel_tol) {
    const int V = model.config().vocab_size, steps = static_cast<int>(ref.greedy_ids.size());
    std::vector<std::vector<float>> full_logits, cached_logits;
    EXPECT_EQ(greedy_full(model, ref.input_ids, steps, &full_logits), ref.greedy_ids) << "full recompute";
    EXPECT_EQ(greedy_cached(model, ref.input_ids, steps, &cached_logits), ref.greedy_ids) << "KV cache";
    for (int s = 0; s < steps; ++s) {
        EXPECT_TRUE(all_close(full_logits[s].data(), ref.greedy_logits.data() + s * V, V, abs_tol, rel_tol))
            << "greedy step " << s;
        EXPECT_TRUE(all_close(cached_logits[s].data(), ref.greedy_logits.data() + s * V, V, abs_tol, rel_tol))
            << "greedy step " << s << " with the KV cache";
    }
}

}  // namespace sinklab::test
