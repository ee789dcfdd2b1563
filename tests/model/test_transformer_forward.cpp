// The forward's two modes and its capture hook: an inference forward (training = false, one
// layer's buffers reused) gives the same bits as a training forward, modes can alternate on one
// model, and a TensorObserver sees every named tap, in order, with the documented shapes and the
// values the model keeps.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "model/transformer.h"

namespace sinklab {
namespace {

ModelConfig small(const std::string& style, int layers) {
    ModelConfig c = ModelConfig::for_style(style);
    c.vocab_size = 53;
    c.d_model = 32;
    c.n_layers = layers;
    c.n_heads = 4;
    c.n_kv_heads = style == "llama" ? 2 : 4;
    c.max_seq_len = 16;
    c.init_std = 0.1f;
    return c;
}

struct Batch {
    int B = 2, T = 12;
    std::vector<int32_t> tokens, targets;
};

Batch random_batch(uint64_t seed, int vocab) {
    Batch b;
    Rng rng(seed);
    for (int i = 0; i < b.B * b.T; ++i) b.tokens.push_back(static_cast<int32_t>(rng.below(vocab)));
    for (int i = 0; i < b.B * b.T; ++i) b.targets.push_back(static_cast<int32_t>(rng.below(vocab)));
    return b;
}

std::vector<float> copy_logits(const Transformer& m, const Batch& b) {
    return std::vector<float>(m.logits(), m.logits() + static_cast<size_t>(b.B) * b.T * m.config().vocab_size);
}

class ForwardModes : public ::testing::TestWithParam<std::pair<const char*, int>> {};

TEST_P(ForwardModes, InferenceForwardGivesTheTrainingLogits) {
    const auto [style, layers] = GetParam();
    Transformer m(small(style, layers));
    m.init_weights(5);
    const Batch b = random_batch(6, m.config().vocab_size);

    const double train_loss = m.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
    const std::vector<float> train_logits = copy_logits(m, b);
    const double infer_loss = m.forward(b.tokens.data(), b.targets.data(), b.B, b.T, ForwardOptions{false});
    const std::vector<float> infer_logits = copy_logits(m, b);
    EXPECT_EQ(std::memcmp(train_logits.data(), infer_logits.data(), train_logits.size() * sizeof(float)), 0)
        << "inference logits differ from training logits";
    EXPECT_EQ(train_loss, infer_loss);
    const double no_target_loss = m.forward(b.tokens.data(), nullptr, b.B, b.T, ForwardOptions{false});
    EXPECT_EQ(no_target_loss, 0.0);
    EXPECT_EQ(std::memcmp(copy_logits(m, b).data(), infer_logits.data(), infer_logits.size() * sizeof(float)), 0);

    // Back to training after an inference forward: backward must work and give the gradient of a
    // model that never ran in inference mode.
    m.zero_grad();
    EXPECT_EQ(m.forward(b.tokens.data(), b.targets.data(), b.B, b.T), train_loss);
    m.backward();
    const std::vector<float> grads(m.grad_data(), m.grad_data() + m.num_params());

    Transformer fresh(small(style, layers));
    fresh.init_weights(5);
    fresh.zero_grad();
    fresh.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
    fresh.backward();
    EXPECT_EQ(std::memcmp(grads.data(), fresh.grad_data(), grads.size() * sizeof(float)), 0)
        << "gradients after an inference forward differ";
}

TEST_P(ForwardModes, TrainingAfterAFirstInferenceForward) {
    // The buffers an inference forward allocates must not be mistaken for training buffers (with
    // one layer both modes keep one layer's activations, but only training has dlogits).
    const auto [style, layers] = GetParam();
    const Batch b = random_batch(6, small(style, layers).vocab_size);
    Transformer m(small(style, layers));
    m.init_weights(5);
    m.forward(b.tokens.data(), b.targets.data(), b.B, b.T, ForwardOptions{false});
    m.zero_grad();
    const double loss = m.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
    m.backward();

    Transformer fresh(small(style, layers));
    fresh.init_weights(5);
    fresh.zero_grad();
    EXPECT_EQ(fresh.forward(b.tokens.data(), b.targets.data(), b.B, b.T), loss);
    fresh.backward();
    EXPECT_EQ(std::memcmp(m.grad_data(), fresh.grad_data(), m.num_params() * sizeof(float)), 0)
        << "gradients after a first inference forward differ";
}

INSTANTIATE_TEST_SUITE_P(Styles, ForwardModes,
                         ::testing::Values(std::pair{"gpt2", 3}, std::pair{"llama", 2}, std::pair{"gpt2", 1},
                                           std::pair{"llama", 1}),
                         [](const auto& info) { return std::string(info.param.first) + "_L" + std::to_string(info.param.second); });

// Records every tap: name, layer, shape and a copy of the data.
class Recorder : public TensorObserver {
public:
    struct Record {
        std::string name;
        int layer;
        Shape shape;
        std::vector<float> data;
    };
    void observe(Tap tap, int layer, const float* data, const Shape& shape) override {
        taps.push_back({std::string(tap_name(tap)), layer, shape, std::vector<float>(data, data + shape_numel(shape))});
    }
    std::vector<Record> taps;
};

TEST(TensorObserver, SeesEveryNamedTapWithItsShape) {
    for (const char* style : {"gpt2", "llama"}) {
        SCOPED_TRACE(style);
        ModelConfig c = small(style, 2);
        Transformer m(c);
        m.init_weights(9);
        const Batch b = random_batch(10, c.vocab_size);
        const int64_t N = static_cast<int64_t>(b.B) * b.T, C = c.d_model;

        Recorder train, infer;
        m.forward(b.tokens.data(), b.targets.data(), b.B, b.T, ForwardOptions{true, &train});
        // expected order: embed, then per layer qkv, attn_weights, attn_out, block_out, then final_norm, logits
        std::vector<std::pair<std::string, int>> expected = {{"embed", -1}};
        for (int l = 0; l < c.n_layers; ++l)
            for (const char* name : {"qkv", "attn_weights", "attn_out", "block_out"}) expected.push_back({name, l});
        expected.push_back({"final_norm", -1});
        expected.push_back({"logits", -1});
        ASSERT_EQ(train.taps.size(), expected.size());
        for (size_t i = 0; i < expected.size(); ++i) {
            const auto& tap = train.taps[i];
            EXPECT_EQ(tap.name, expected[i].first) << "tap " << i;
            EXPECT_EQ(tap.layer, expected[i].second) << tap.name;
            Shape shape;
            if (tap.name == "embed" || tap.name == "block_out" || tap.name == "final_norm") shape = {N, C};
            if (tap.name == "qkv") shape = {N, c.qkv_width()};
            if (tap.name == "attn_weights") shape = {b.B, c.n_heads, b.T, b.T};
            if (tap.name == "attn_out") shape = {N, static_cast<int64_t>(c.n_heads) * c.hs()};
            if (tap.name == "logits") shape = {N, c.vocab_size};
            EXPECT_EQ(tap.shape, shape) << tap.name << " of layer " << tap.layer;
        }

        // The taps hold what the model keeps: hidden states, attention weights, logits.
        EXPECT_EQ(train.taps[0].data, std::vector<float>(m.hidden(0), m.hidden(0) + N * C));
        for (int l = 0; l < c.n_layers; ++l) {
            const auto& w = train.taps[1 + 4 * l + 1].data;
            const auto& out = train.taps[1 + 4 * l + 3].data;
            EXPECT_EQ(w, std::vector<float>(m.attention_weights(l), m.attention_weights(l) + w.size())) << "layer " << l;
            EXPECT_EQ(out, std::vector<float>(m.hidden(l + 1), m.hidden(l + 1) + N * C)) << "layer " << l;
            // causal rows sum to one
            for (int64_t row = 0; row < static_cast<int64_t>(w.size()) / b.T; ++row) {
                double sum = 0.0;
                for (int j = 0; j < b.T; ++j) sum += w[row * b.T + j];
                ASSERT_NEAR(sum, 1.0, 1e-5) << "layer " << l << " row " << row;
            }
        }
        EXPECT_EQ(train.taps.back().data, copy_logits(m, b));

        // An inference forward taps the same tensors with the same bits.
        m.forward(b.tokens.data(), b.targets.data(), b.B, b.T, ForwardOptions{false, &infer});
        ASSERT_EQ(infer.taps.size(), train.taps.size());
        for (size_t i = 0; i < train.taps.size(); ++i) {
            EXPECT_EQ(infer.taps[i].name, train.taps[i].name);
            EXPECT_EQ(infer.taps[i].layer, train.taps[i].layer);
            EXPECT_EQ(infer.taps[i].shape, train.taps[i].shape);
            EXPECT_TRUE(infer.taps[i].data == train.taps[i].data)
                << train.taps[i].name << " of layer " << train.taps[i].layer << " differs in inference mode";
        }
    }
}

}  // namespace
}  // namespace sinklab

namespace sinklab {
namespace {

// Positions beyond max_seq_len: RoPE angles, sinusoids, ALiBi and relative distances are formulas,
// so a model made for 16 positions runs 40 and gives the bits of the same weights configured for
// 40, on both attention kernels; a learned table refuses, naming the length.
TEST(ForwardLength, ComputedPositionsExtrapolateLearnedOnesRefuse) {
    for (PositionKind pe : {PositionKind::rope, PositionKind::sinusoidal, PositionKind::alibi, PositionKind::relative,
                            PositionKind::none}) {
        SCOPED_TRACE(to_string(pe));
        ModelConfig c = small("gpt2", 2);
        c.positions = pe;
        ModelConfig longer = c;
        longer.max_seq_len = 40;
        Transformer m(c), reference(longer);
        m.init_weights(5);
        ASSERT_EQ(m.num_params(), reference.num_params());
        std::memcpy(reference.param_data(), m.param_data(), sizeof(float) * m.num_params());
        Rng rng(6);
        std::vector<int32_t> tokens(2 * 40);
        for (auto& t : tokens) t = static_cast<int32_t>(rng.below(c.vocab_size));
        for (AttentionKernel kernel : {AttentionKernel::materialised, AttentionKernel::blockwise}) {
            ForwardOptions options{false};
            options.attention_kernel = kernel;
            m.forward(tokens.data(), nullptr, 2, 40, options);
            reference.forward(tokens.data(), nullptr, 2, 40, options);
            const size_t n = static_cast<size_t>(2) * 40 * c.vocab_size;
            EXPECT_EQ(std::vector<float>(m.logits(), m.logits() + n),
                      std::vector<float>(reference.logits(), reference.logits() + n))
                << attention_kernel_name(kernel);
        }
    }
    ModelConfig learned = small("gpt2", 1);
    Transformer m(learned);
    m.init_weights(5);
    const std::vector<int32_t> tokens(17, 1);
    try {
        m.forward(tokens.data(), nullptr, 1, 17, ForwardOptions{false});
        FAIL() << "a learned table ran beyond its rows";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("max_seq_len 16"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace sinklab
