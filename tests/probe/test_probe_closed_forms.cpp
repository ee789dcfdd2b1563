// Closed forms of DESIGN.md section 4, "Inputs": with one token repeated, a model without absolute
// positions (NoPE, RoPE, ALiBi) has the same hidden state at every position and layer; its scores
// depend on the distance i - j only, so A_ij = exp(g(i-j)) / sum_{d=0..i} exp(g(d)) per head (rows
// uniform for NoPE: alpha_1 = H_T / T, Sink_1 = 0). Learned positions break all three. A model whose
// heads attend only to token 1 has Sink_1 = 100%.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "probe/probe.h"
#include "probe_test_models.h"

namespace sinklab {
namespace {

using test::random_model;
using test::small_config;

constexpr int kT = 64;
constexpr int kRepeatedId = 5;

// Records, per layer, the largest |h_t - h_1| over positions, samples and dims of the block outputs,
// relative to the largest |h| (float32 rounding grows with the scale of the residual stream), and
// keeps each layer's attention weights (materialised path).
class RepeatObserver final : public TensorObserver {
public:
    RepeatObserver(int layers, int T) : T_(T), spread(layers, 0.0), weights(layers) {}
    void observe(Tap tap, int layer, const float* data, const Shape& shape) override {
        if (tap == Tap::attn_weights) weights[layer].assign(data, data + shape_numel(shape));
        if (tap != Tap::block_out) return;
        const long C = shape[1];
        double largest = 0.0, worst = 0.0;
        for (long row = 0; row < shape[0]; ++row) {
            const float* first = data + (row - row % T_) * C;
            for (long c = 0; c < C; ++c) {
                largest = std::max(largest, static_cast<double>(std::abs(data[row * C + c])));
                worst = std::max(worst, static_cast<double>(std::abs(data[row * C + c] - first[c])));
            }
        }
        spread[layer] = worst / std::max(largest, 1e-30);
    }
    int T_;
    std::vector<double> spread;
    std::vector<std::vector<float>> weights;  // [layer] (B, NH, T, T)
};

struct RepeatRun {
    std::vector<double> spread;                 // [layer] max |h_t - h_1| / max |h|
    std::vector<std::vector<float>> weights;    // [layer] (1, NH, T, T)
    ProbeResult probe;
};

RepeatRun run_repeat(Transformer& model) {
    const ProbeSamples samples = repeat_samples(kRepeatedId, model.config().vocab_size, kT, 2, std::nullopt);
    RepeatObserver observer(model.config().n_layers, kT);
    ForwardOptions forward;
    forward.training = false;
    forward.observer = &observer;
    forward.attention_kernel = AttentionKernel::materialised;  // the rows themselves are checked
    model.forward(samples.tokens.data(), nullptr, 1, kT, forward);
    ProbeOptions options;
    options.metrics = {Metric::sink};
    return {observer.spread, observer.weights, run_probe(model, samples, options)};
}

double harmonic_over_T(int T) {
    double h = 0.0;
    for (int t = 1; t <= T; ++t) h += 1.0 / t;
    return h / T;
}

// The distance-only form of one head's (T, T) weights: g(d) - g(0) read from the last row, every
// row predicted from it. Returns the largest |A_ij - prediction|, and alpha_1 of the prediction.
struct DistanceForm {
    double max_error = 0.0;
    double alpha_1 = 0.0;
};

DistanceForm distance_form(const float* A, int T) {
    std::vector<double> e(T);  // exp(g(d) - g(0))
    const float* last = A + static_cast<long>(T - 1) * T;
    for (int d = 0; d < T; ++d) e[d] = last[T - 1 - d] / last[T - 1];
    DistanceForm f;
    double Z = 0.0;
    for (int i = 0; i < T; ++i) {
        Z += e[i];
        for (int j = 0; j <= i; ++j)
            f.max_error = std::max(f.max_error, std::abs(A[static_cast<long>(i) * T + j] - e[i - j] / Z));
        f.alpha_1 += e[i] / Z / T;
    }
    return f;
}

TEST(ProbeClosedForms, NoPositionsRepeatedTokenHasEqualStatesAndUniformRows) {
    auto model = random_model(small_config(PositionKind::none));
    const RepeatRun run = run_repeat(*model);
    for (size_t l = 0; l < run.spread.size(); ++l) EXPECT_LE(run.spread[l], 1e-5) << "layer " << l;
    const double expected = harmonic_over_T(kT);
    EXPECT_NEAR(expected, 0.0741, 1e-4);
    for (const auto& layer : run.probe.alpha[0])
        for (double a : layer) EXPECT_NEAR(a, expected, 1e-5);
    EXPECT_EQ(run.probe.sink_percent[0], 0.0);
}

TEST(ProbeClosedForms, RopeRepeatedTokenHasEqualStatesAndDistanceOnlyRows) {
    auto model = random_model(small_config(PositionKind::rope));
    RepeatRun run = run_repeat(*model);
    for (size_t l = 0; l < run.spread.size(); ++l) EXPECT_LE(run.spread[l], 1e-5) << "layer " << l;
    const int NH = model->config().n_heads;
    double least_uniform = 0.0;  // RoPE rows are not uniform: the form is not NoPE's in disguise
    for (size_t l = 0; l < run.weights.size(); ++l)
        for (int h = 0; h < NH; ++h) {
            const DistanceForm f = distance_form(run.weights[l].data() + static_cast<long>(h) * kT * kT, kT);
            EXPECT_LE(f.max_error, 1e-5) << "layer " << l << " head " << h;
            EXPECT_NEAR(run.probe.alpha[0][l][h], f.alpha_1, 1e-5) << "layer " << l << " head " << h;
            least_uniform = std::max(least_uniform, std::abs(f.alpha_1 - harmonic_over_T(kT)));
        }
    EXPECT_GT(least_uniform, 1e-3);
}

TEST(ProbeClosedForms, AlibiRepeatedTokenHasEqualStatesAndDistanceOnlyRows) {
    const std::unique_ptr<Transformer> model = random_model(small_config(PositionKind::alibi));
    const RepeatRun run = run_repeat(*model);
    for (size_t l = 0; l < run.spread.size(); ++l) EXPECT_LE(run.spread[l], 1e-5) << "layer " << l;
    for (size_t l = 0; l < run.weights.size(); ++l)
        for (int h = 0; h < model->config().n_heads; ++h) {
            const DistanceForm f = distance_form(run.weights[l].data() + static_cast<long>(h) * kT * kT, kT);
            EXPECT_LE(f.max_error, 1e-5) << "layer " << l << " head " << h;
            EXPECT_NEAR(run.probe.alpha[0][l][h], f.alpha_1, 1e-5) << "layer " << l << " head " << h;
        }
}

TEST(ProbeClosedForms, LearnedPositionsBreakAllThree) {
    auto model = random_model(small_config(PositionKind::learned));
    const RepeatRun run = run_repeat(*model);
    double spread = 0.0, off_harmonic = 0.0, off_distance = 0.0;
    for (double s : run.spread) spread = std::max(spread, s);
    for (const auto& layer : run.probe.alpha[0])
        for (double a : layer) off_harmonic = std::max(off_harmonic, std::abs(a - harmonic_over_T(kT)));
    for (const auto& w : run.weights)
        for (int h = 0; h < model->config().n_heads; ++h)
            off_distance = std::max(off_distance, distance_form(w.data() + static_cast<long>(h) * kT * kT, kT).max_error);
    EXPECT_GT(spread, 1e-2);
    EXPECT_GT(off_harmonic, 1e-2);
    EXPECT_GT(off_distance, 1e-2);
}

TEST(ProbeClosedForms, HeadsAttendingOnlyToTokenOneGiveSinkOneHundredPercent) {
    auto model = test::token_one_sink_model();
    const ProbeSamples samples = random_samples(model->config().vocab_size, kT, 4, std::nullopt, 3);
    for (AttentionKernel path : {AttentionKernel::materialised, AttentionKernel::blockwise}) {
        ProbeOptions options;
        options.kernel = path;
        const ProbeResult r = run_probe(*model, samples, options);
        EXPECT_DOUBLE_EQ(r.sink_percent[0], 100.0);
        for (const auto& layer : r.sink_percent_per_layer) EXPECT_DOUBLE_EQ(layer[0], 100.0);
        for (const auto& layer : r.alpha[0])
            for (double a : layer) EXPECT_GT(a, 0.999);
        for (int k = 2; k <= r.positions; ++k) EXPECT_DOUBLE_EQ(r.sink_percent[k - 1], 0.0) << "k = " << k;
        // every query's key 1 is the only key with weight: rows carry no entropy
        for (const auto& layer : r.entropy)
            for (double e : layer) EXPECT_LT(e, 1e-3);
    }
}

}  // namespace
}  // namespace sinklab
