// The engine against an independent PyTorch implementation (tests/oracle/engine_reference.py,
// float64): logits, loss and every parameter gradient, tensor by tensor, for both styles and the
// variants the engine supports (GQA, MQA, tied embeddings, window and prefix masks, ignored
// targets, sinusoidal and no positions, GeGLU and ReLU MLPs, head_dim != C / NH, an encoder's
// bidirectional post-norm blocks with the exact GELU, alone and on a right-padded batch).
//
// Tolerance: for each tensor, max_i |sinklab_i - torch_i| <= 1e-4 * max_i |torch_i| (relative to the
// tensor's own largest entry), sinklab in float32 and PyTorch in float64. The loss: relative 1e-4.
// A tensor whose exact gradient vanishes cannot be compared relatively (its float32 value is
// rounding noise): the key bias, since softmax is invariant to adding q.b_k to a whole row of
// scores. Such tensors (reference max below 1e-12 x the model's largest gradient) are checked
// absolutely: sinklab's entries must stay below 1e-6 x the model's largest gradient entry
// (test::compare_gradients).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "../oracle/oracle_case.h"
#include "core/rng.h"
#include "model/transformer.h"

namespace sinklab {
namespace {

using test::OracleBatch;

constexpr double kRelTol = 1e-4;

struct OracleModel {
    std::string name;
    ModelConfig config;
    int ignored = 0;  // leading positions of each sequence without a target
};

ModelConfig small(const std::string& style) {
    ModelConfig c = ModelConfig::for_style(style);
    c.vocab_size = 61;
    c.d_model = 48;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 4;
    c.max_seq_len = 24;
    c.init_std = 0.1f;  // large enough that attention is far from uniform
    return c;
}

std::vector<OracleModel> oracle_models() {
    std::vector<OracleModel> models;
    models.push_back({"gpt2", small("gpt2")});
    {
        ModelConfig c = small("llama");
        c.n_heads = 6;
        c.n_kv_heads = 2;  // GQA: 3 query heads per kv head
        models.push_back({"llama_gqa", c});
    }
    {
        ModelConfig c = small("llama");
        c.d_model = 32;
        c.n_kv_heads = 1;  // MQA
        c.tied_embeddings = true;
        models.push_back({"llama_mqa_tied", c});
    }
    {
        ModelConfig c = small("gpt2");
        c.positions = PositionKind::sinusoidal;
        c.mlp = MlpKind::geglu;
        c.window = 6;
        c.prefix = 4;
        models.push_back({"gpt2_sinusoidal_geglu_window_prefix", c, 4});
    }
    {
        ModelConfig c = small("gpt2");
        c.d_model = 32;
        c.head_dim = 12;  // NH * HS = 48 != C
        c.positions = PositionKind::none;
        c.mlp = MlpKind::relu;
        c.norm = NormKind::rmsnorm;
        c.tied_embeddings = true;
        models.push_back({"nope_relu_rmsnorm_headdim", c, 1});
    }
    {
        // an encoder's blocks: bidirectional attention, post-norm LayerNorm, exact GELU
        ModelConfig c = small("gpt2");
        c.causal = false;
        c.norm_placement = NormPlacement::post;
        c.mlp = MlpKind::gelu_erf;
        models.push_back({"bidirectional_post_gelu_erf", c});
    }
    return models;
}

TEST(TransformerOracle, LogitsLossAndEveryGradientMatchPyTorch) {
    const std::vector<OracleModel> models = oracle_models();
    std::vector<std::unique_ptr<test::OracleDir>> dirs;
    std::vector<std::unique_ptr<Transformer>> nets;
    std::vector<double> losses;
    const int B = 2, T = 16;
    for (size_t m = 0; m < models.size(); ++m) {
        auto net = std::make_unique<Transformer>(models[m].config);
        test::randomize_weights(*net, 1000 + m);
        Rng rng(2000 + m);
        const OracleBatch batch = test::random_batch(rng, B, T, models[m].config.vocab_size, models[m].ignored);
        net->zero_grad();
        losses.push_back(net->forward(batch.tokens.data(), batch.targets.data(), B, T));
        net->backward();
        dirs.push_back(std::make_unique<test::OracleDir>(models[m].name));
        test::write_oracle_case(dirs.back()->path(), *net, batch);
        nets.push_back(std::move(net));
    }
    std::vector<test::fs::path> paths;
    for (const auto& d : dirs) paths.push_back(d->path());
    ASSERT_TRUE(test::run_oracle(paths));

    for (size_t m = 0; m < models.size(); ++m) {
        SCOPED_TRACE("model " + models[m].name);
        const Transformer& net = *nets[m];
        const test::OracleReference ref = test::read_oracle_reference(dirs[m]->path());
        const double ref_loss = ref.info.at("loss").get<double>();
        EXPECT_NEAR(losses[m], ref_loss, kRelTol * std::abs(ref_loss)) << "loss";

        const size_t n_logits = static_cast<size_t>(B) * T * net.config().vocab_size;
        const test::TensorError logits = test::tensor_error("logits", net.logits(), ref.section("logits"), n_logits);
        EXPECT_LE(logits.error, kRelTol) << test::describe(logits);

        const test::GradientReport g = test::compare_gradients(net, net.grad_data(), ref.section("grads"), kRelTol);
        EXPECT_TRUE(g.failures.empty()) << "worst gradient " << test::describe(g.worst) << "\nall gradients beyond "
                                        << kRelTol << " relative:" << g.failures;
        // Only the key biases may vanish; a vanishing weight would mean the case tests nothing.
        EXPECT_EQ(g.vanishing, net.config().linear_bias ? net.config().n_layers : 0);
        std::cout << "[ oracle   ] " << models[m].name << ": loss " << losses[m] << " (torch " << ref_loss
                  << "), logits error " << logits.error << ", worst gradient " << test::describe(g.worst) << "\n";
    }
}

// A right-padded batch of a bidirectional model: the padded keys are hidden from every query (and
// their targets ignored), in the forward pass and in every gradient, on both attention kernels.
TEST(TransformerOracle, BidirectionalPaddedBatchMatchesPyTorch) {
    ModelConfig c = small("gpt2");
    c.causal = false;
    c.norm_placement = NormPlacement::post;
    c.mlp = MlpKind::gelu_erf;
    Transformer net(c);
    test::randomize_weights(net, 3000);
    const int B = 3, T = 12;
    const std::vector<int> lengths{12, 7, 1};
    Rng rng(3001);
    OracleBatch batch = test::random_batch(rng, B, T, c.vocab_size);
    for (int b = 0; b < B; ++b)
        for (int t = lengths[b]; t < T; ++t) batch.targets[static_cast<size_t>(b) * T + t] = -1;
    test::OracleDir dir("bidirectional_padded");
    test::write_oracle_case(dir.path(), net, batch, {{"lengths", lengths}});
    ASSERT_TRUE(test::run_oracle({dir.path()}));
    const test::OracleReference ref = test::read_oracle_reference(dir.path());
    const double ref_loss = ref.info.at("loss").get<double>();
    for (AttentionKernel kernel : {AttentionKernel::materialised, AttentionKernel::blockwise}) {
        SCOPED_TRACE(attention_kernel_name(kernel));
        ForwardOptions options;
        options.lengths = lengths.data();
        options.attention_kernel = kernel;
        net.zero_grad();
        const double loss = net.forward(batch.tokens.data(), batch.targets.data(), B, T, options);
        net.backward();
        EXPECT_NEAR(loss, ref_loss, kRelTol * std::abs(ref_loss)) << "loss";
        const test::TensorError logits =
            test::tensor_error("logits", net.logits(), ref.section("logits"), static_cast<size_t>(B) * T * c.vocab_size);
        EXPECT_LE(logits.error, kRelTol) << test::describe(logits);
        const test::GradientReport g = test::compare_gradients(net, net.grad_data(), ref.section("grads"), kRelTol);
        EXPECT_TRUE(g.failures.empty()) << "worst gradient " << test::describe(g.worst) << "\nall gradients beyond "
                                        << kRelTol << " relative:" << g.failures;
        std::cout << "[ oracle   ] bidirectional padded batch (" << attention_kernel_name(kernel) << "): loss " << loss
                  << " (torch " << ref_loss << "), logits error " << logits.error << ", worst gradient "
                  << test::describe(g.worst) << "\n";
    }
}

}  // namespace
}  // namespace sinklab
