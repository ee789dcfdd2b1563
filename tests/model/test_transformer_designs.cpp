// Every attention design of AttentionSpec trained inside the model, against the PyTorch reference
// (tests/oracle/engine_reference.py, float64, with the designs of attention_designs_reference.py):
// logits, loss and every parameter gradient (slot tensors, value biases, sigmoid biases, gate
// projections, the sink token and the relative-position table included), tensor by tensor, for each
// design on one base model and for each axis (window, prefix, positions nope / learned / sinusoidal
// / rope / alibi / relative, pre / post norm, gelu / relu / swiglu MLPs, score scale, a BOS token,
// grouped-query heads) on a design that the axis touches; on both attention kernels (materialised
// and blockwise), each against the same reference.
//
// Tolerance as in test_transformer_oracle.cpp: each tensor within 1e-4 of its own largest entry,
// the loss within 1e-4 relative; gradients that vanish exactly (the key bias under
// shift-invariant rows) are checked absolutely (test::compare_gradients).
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../oracle/oracle_case.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/transformer.h"

namespace sinklab {
namespace {

using test::OracleBatch;

constexpr double kRelTol = 1e-4;

struct DesignCase {
    std::string name;
    ModelConfig config;
    int T = 8;
    int ignored = 0;      // leading positions without a target (prefix LM)
    int bos = -1;         // >= 0: every sequence starts with this token
};

ModelConfig tiny(const std::string& style, const std::string& design) {
    ModelConfig c = ModelConfig::for_style(style);
    c.vocab_size = 29;
    c.d_model = 16;
    c.n_layers = 2;
    c.n_heads = 2;
    c.n_kv_heads = 2;
    c.max_seq_len = 12;
    c.init_std = 0.3f;  // attention far from uniform
    c.attention = AttentionSpec::parse(design);
    return c;
}

std::vector<DesignCase> design_cases() {
    std::vector<DesignCase> cases;
    std::vector<std::string> designs = AttentionSpec::known_names();
    designs.push_back("sigmoid:-2");
    for (const std::string& d : designs) cases.push_back({d, tiny("gpt2", d)});
    auto axis = [&](const std::string& name, const std::string& style, const std::string& design, auto&& edit,
                    int T = 8, int ignored = 0, int bos = -1) {
        DesignCase dc{name, tiny(style, design), T, ignored, bos};
        edit(dc.config);
        cases.push_back(dc);
    };
    axis("window_prefix_kv_bias", "gpt2", "kv_bias", [](ModelConfig& c) { c.window = 3; c.prefix = 2; }, 8, 1);
    axis("window_prefix_sink_token", "gpt2", "sink_token", [](ModelConfig& c) { c.window = 3; c.prefix = 2; }, 8, 1);
    axis("nope_score_bias", "gpt2", "score_bias", [](ModelConfig& c) { c.positions = PositionKind::none; });
    axis("sinusoidal_sink_token", "gpt2", "sink_token", [](ModelConfig& c) { c.positions = PositionKind::sinusoidal; });
    axis("rope_gqa_gated", "llama", "gated", [](ModelConfig& c) { c.n_heads = 4; c.n_kv_heads = 1; });
    axis("rope_sink_token", "llama", "sink_token", [](ModelConfig&) {});
    axis("rope_kv_bias_shared", "llama", "kv_bias_shared", [](ModelConfig& c) { c.n_heads = 4; c.n_kv_heads = 2; });
    axis("alibi_softmax", "gpt2", "softmax", [](ModelConfig& c) { c.positions = PositionKind::alibi; c.n_heads = 4; });
    axis("alibi_sigmoid_learnable", "gpt2", "sigmoid_learnable",
         [](ModelConfig& c) { c.positions = PositionKind::alibi; c.n_heads = 8; c.d_model = 24; });
    axis("alibi_sink_token_window", "gpt2", "sink_token",
         [](ModelConfig& c) { c.positions = PositionKind::alibi; c.window = 4; });
    // T = 40: relative distances beyond 16 reach T5's log-spaced buckets
    axis("relative_softmax_long", "gpt2", "softmax",
         [](ModelConfig& c) { c.positions = PositionKind::relative; c.max_seq_len = 40; }, 40);
    axis("relative_kv_bias_prefix", "gpt2", "kv_bias",
         [](ModelConfig& c) { c.positions = PositionKind::relative; c.prefix = 3; }, 8, 2);
    axis("relative_softpick", "gpt2", "softpick", [](ModelConfig& c) { c.positions = PositionKind::relative; });
    axis("post_softmax", "gpt2", "softmax", [](ModelConfig& c) { c.norm_placement = NormPlacement::post; });
    axis("post_gated_headwise_rmsnorm", "gpt2", "gated_headwise", [](ModelConfig& c) {
        c.norm_placement = NormPlacement::post;
        c.norm = NormKind::rmsnorm;
    });
    axis("post_sink_token", "gpt2", "sink_token", [](ModelConfig& c) { c.norm_placement = NormPlacement::post; });
    axis("relu_v_bias", "gpt2", "v_bias", [](ModelConfig& c) { c.mlp = MlpKind::relu; });
    axis("swiglu_k_bias", "gpt2", "k_bias", [](ModelConfig& c) { c.mlp = MlpKind::swiglu; });
    axis("scale_softmax1", "gpt2", "softmax1", [](ModelConfig& c) { c.attention.scale = 0.7f; });
    axis("scale_sigmoid_norm", "gpt2", "sigmoid_norm", [](ModelConfig& c) { c.attention.scale = 1.3f; });
    axis("bos_kv_bias", "gpt2", "kv_bias", [](ModelConfig&) {}, 8, 0, 28);
    axis("bos_sink_token_tied", "gpt2", "sink_token", [](ModelConfig& c) { c.tied_embeddings = true; }, 8, 0, 28);
    return cases;
}

TEST(TransformerDesigns, EveryDesignAndAxisMatchesPyTorch) {
    const std::vector<DesignCase> cases = design_cases();
    std::vector<std::unique_ptr<test::OracleDir>> dirs;
    std::vector<std::unique_ptr<Transformer>> nets;
    std::vector<OracleBatch> batches;
    const int B = 2;
    for (size_t m = 0; m < cases.size(); ++m) {
        const DesignCase& dc = cases[m];
        auto net = std::make_unique<Transformer>(dc.config);
        test::randomize_weights(*net, 3000 + m);
        Rng rng(4000 + m);
        OracleBatch batch = test::random_batch(rng, B, dc.T, dc.config.vocab_size, dc.ignored);
        if (dc.bos >= 0)
            for (int b = 0; b < B; ++b) batch.tokens[static_cast<size_t>(b) * dc.T] = dc.bos;
        dirs.push_back(std::make_unique<test::OracleDir>(dc.name));
        test::write_oracle_case(dirs.back()->path(), *net, batch);
        nets.push_back(std::move(net));
        batches.push_back(batch);
    }
    std::vector<test::fs::path> paths;
    for (const auto& d : dirs) paths.push_back(d->path());
    ASSERT_TRUE(test::run_oracle(paths));

    for (size_t m = 0; m < cases.size(); ++m) {
        const test::OracleReference ref = test::read_oracle_reference(dirs[m]->path());
        for (AttentionKernel kernel : {AttentionKernel::materialised, AttentionKernel::blockwise}) {
            SCOPED_TRACE("case " + cases[m].name + ", " + attention_kernel_name(kernel) + " kernel");
            Transformer& net = *nets[m];
            const OracleBatch& batch = batches[m];
            ForwardOptions forward;
            forward.attention_kernel = kernel;
            net.zero_grad();
            const double loss = net.forward(batch.tokens.data(), batch.targets.data(), B, cases[m].T, forward);
            net.backward();
            const double ref_loss = ref.info.at("loss").get<double>();
            EXPECT_NEAR(loss, ref_loss, kRelTol * std::abs(ref_loss)) << "loss";
            const size_t n_logits = static_cast<size_t>(B) * cases[m].T * net.config().vocab_size;
            const test::TensorError logits = test::tensor_error("logits", net.logits(), ref.section("logits"), n_logits);
            EXPECT_LE(logits.error, kRelTol) << test::describe(logits);
            const test::GradientReport g = test::compare_gradients(net, net.grad_data(), ref.section("grads"), kRelTol);
            EXPECT_TRUE(g.failures.empty()) << "worst gradient " << test::describe(g.worst) << "\nall gradients beyond "
                                            << kRelTol << " relative:" << g.failures;
            std::cout << "[ oracle   ] " << cases[m].name << " (" << attention_kernel_name(kernel) << "): loss " << loss
                      << ", logits error " << logits.error << ", worst gradient " << test::describe(g.worst) << "\n";
        }
    }
}

// The design's tensors are parameters named layers.{l}.attn.<name>, without weight decay; the gate
// projection is a decayed matrix; the sink token and the relative table live with the embeddings.
TEST(TransformerDesigns, DesignTensorsAreNamedParameters) {
    auto decay_of = [](const Transformer& m, std::string_view name) {
        const ParamInfo* p = m.find(name);
        EXPECT_NE(p, nullptr) << name;
        return p && p->decay;
    };
    Transformer kv(tiny("gpt2", "kv_bias"));
    EXPECT_FALSE(decay_of(kv, "layers.1.attn.slot_k"));
    EXPECT_FALSE(decay_of(kv, "layers.1.attn.slot_v"));
    EXPECT_EQ(kv.find("layers.0.attn.slot_k")->shape, (Shape{2, 8}));
    Transformer gated(tiny("gpt2", "gated_headwise"));
    EXPECT_TRUE(decay_of(gated, "layers.0.attn.w_gate"));
    EXPECT_EQ(gated.find("layers.0.attn.w_gate")->shape, (Shape{2, 16}));
    ModelConfig sink_config = tiny("gpt2", "sink_token");
    sink_config.positions = PositionKind::learned;
    Transformer sink(sink_config);
    EXPECT_FALSE(decay_of(sink, "embed.sink_token"));
    EXPECT_EQ(sink.find("embed.positions")->shape, (Shape{13, 16})) << "max_seq_len tokens after the sink";
    ModelConfig relative = tiny("gpt2", "softmax");
    relative.positions = PositionKind::relative;
    EXPECT_FALSE(decay_of(Transformer(relative), "embed.relative_bias"));
}

class TapRecorder : public TensorObserver {
public:
    void observe(Tap tap, int layer, const float*, const Shape& shape) override {
        taps.push_back({std::string(tap_name(tap)), layer, shape});
    }
    struct Record {
        std::string name;
        int layer;
        Shape shape;
    };
    std::vector<Record> taps;
};

// Designs with a slot tap their slot weights (B, NH, T) just before each layer's attention weights
// (the trainer's Sink_* reads them in that order).
TEST(TransformerDesigns, SlotWeightsAreTappedBeforeTheAttentionWeights) {
    Transformer m(tiny("gpt2", "score_bias"));
    m.init_weights(1);
    const std::vector<int32_t> tokens(2 * 8, 3);
    TapRecorder rec;
    ForwardOptions options;
    options.training = false;
    options.observer = &rec;
    m.forward(tokens.data(), nullptr, 2, 8, options);
    int slot_taps = 0;
    for (size_t i = 0; i < rec.taps.size(); ++i) {
        if (rec.taps[i].name != "attn_slot_weights") continue;
        ++slot_taps;
        EXPECT_EQ(rec.taps[i].shape, (Shape{2, 2, 8}));
        ASSERT_LT(i + 1, rec.taps.size());
        EXPECT_EQ(rec.taps[i + 1].name, "attn_weights");
        EXPECT_EQ(rec.taps[i + 1].layer, rec.taps[i].layer);
    }
    EXPECT_EQ(slot_taps, 2);
}

// sink_token: the blocks see T + 1 positions (the sink first), the head and the loss the T tokens.
TEST(TransformerDesigns, SinkTokenIsPrependedAndLeftOutOfTheLogits) {
    Transformer m(tiny("gpt2", "sink_token"));
    m.init_weights(2);
    const int B = 2, T = 8;
    std::vector<int32_t> tokens(B * T), targets(B * T);
    for (int i = 0; i < B * T; ++i) tokens[i] = targets[i] = i % 29;
    TapRecorder rec;
    ForwardOptions options;
    options.observer = &rec;
    const double loss = m.forward(tokens.data(), targets.data(), B, T, options);
    EXPECT_TRUE(std::isfinite(loss));
    for (const auto& tap : rec.taps) {
        if (tap.name == "attn_weights") {
            EXPECT_EQ(tap.shape, (Shape{B, 2, T + 1, T + 1}));
        } else if (tap.name == "block_out") {
            EXPECT_EQ(tap.shape, (Shape{B * (T + 1), 16}));
        } else if (tap.name == "logits") {
            EXPECT_EQ(tap.shape, (Shape{B * T, 29}));
        }
    }
    // the sink token changes the real tokens' logits, so it is really there
    const std::vector<float> before(m.logits(), m.logits() + B * T * 29);
    // alternating signs: LayerNorm would remove a common shift
    for (int ch = 0; ch < 16; ++ch) m.param("embed.sink_token")[ch] += ch % 2 ? 1.0f : -1.0f;
    m.forward(tokens.data(), targets.data(), B, T);
    double change = 0.0;
    for (int i = 0; i < B * T * 29; ++i) change += std::abs(m.logits()[i] - before[i]);
    EXPECT_GT(change, 1e-3);
}

TEST(TransformerDesigns, LinearEluTakesNoScoreBias) {
    ModelConfig linear = tiny("gpt2", "linear_elu");
    linear.positions = PositionKind::relative;
    EXPECT_THROW(linear.validate(), Error);
}

}  // namespace
}  // namespace sinklab
