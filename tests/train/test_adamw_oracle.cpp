// Three training steps of sinklab (forward, backward, grad_clip, learning_rate_at, AdamW)
// against torch.optim.AdamW with two parameter groups (decay / no decay from ParamInfo::decay) and
// torch.nn.utils.clip_grad_norm_, with the PyTorch reference model in float64
// (tests/oracle/engine_reference.py). A different batch each step; clipping is active.
//
// Adam divides by sqrt(v), so float32 rounding in a tiny gradient entry becomes an O(lr) change of
// that parameter: PyTorch float32 against PyTorch float64 differs by up to 4e-4 relative after
// three steps on these models, whatever the implementation. The check is therefore split in two,
// each part sharp:
//   - gradients: at every step, sinklab's gradient against torch's own float64 gradient at the same
//     parameters, tensor by tensor within 1e-4 relative (as in tests/model/test_transformer_oracle);
//   - optimizer: torch's AdamW, stepped with sinklab's gradient of each step, against sinklab's
//     parameters after the three steps: max_i |a_i - b_i| <= 1e-5 * max_i |b_i| per tensor.
// The loss of each step within 1e-4 relative; the norm grad_clip returns within 1e-5.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "../oracle/oracle_case.h"
#include "core/rng.h"
#include "model/transformer.h"
#include "train/adamw.h"

namespace sinklab {
namespace {

using test::OracleBatch;

constexpr double kGradTol = 1e-4;
constexpr double kLossTol = 1e-4;
constexpr double kNormTol = 1e-5;
constexpr double kParamTol = 1e-5;

ModelConfig small(const std::string& style) {
    ModelConfig c = ModelConfig::for_style(style);
    c.vocab_size = 61;
    c.d_model = 48;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = style == "llama" ? 2 : 4;
    c.max_seq_len = 24;
    c.init_std = 0.1f;
    return c;
}

void run_three_steps(const std::string& name, const ModelConfig& config) {
    SCOPED_TRACE("model " + name);
    const int B = 2, T = 16, steps = 3;
    const long warmup = 2, total = 10;
    const float max_lr = 3e-3f, min_lr = 3e-4f;
    AdamWOptions options;
    options.beta1 = 0.9f;
    options.beta2 = 0.95f;
    options.eps = 1e-8f;
    options.weight_decay = 0.1f;
    const double clip = 3.0;  // gpt2 clips its first step only, llama_gqa every step

    Transformer net(config);
    test::randomize_weights(net, 77);
    Rng rng(78);
    std::vector<OracleBatch> batches;
    std::vector<float> lrs;
    nlohmann::json spec = {{"beta1", options.beta1}, {"beta2", options.beta2}, {"eps", options.eps},
                           {"weight_decay", options.weight_decay}, {"clip", clip},
                           {"sinklab_grads", "sinklab_grads.bin"}, {"steps", nlohmann::json::array()}};
    for (int s = 1; s <= steps; ++s) {
        batches.push_back(test::random_batch(rng, B, T, config.vocab_size));
        lrs.push_back(learning_rate_at(s, warmup, total, max_lr, min_lr));
        spec["steps"].push_back({{"lr", lrs.back()}, {"tokens", batches.back().tokens}, {"targets", batches.back().targets}});
    }
    EXPECT_FLOAT_EQ(lrs[0], max_lr / 2);  // warmup
    EXPECT_FLOAT_EQ(lrs[1], max_lr);
    EXPECT_LT(lrs[2], max_lr);            // cosine decay
    test::OracleDir dir(name);
    test::write_oracle_case(dir.path(), net, batches[0], {{"adamw", spec}});
    const std::vector<float> initial(net.param_data(), net.param_data() + net.num_params());

    AdamW opt(net, options);
    std::vector<double> losses, norms;
    std::vector<float> grads;  // (steps, num_params), before clipping
    for (int s = 1; s <= steps; ++s) {
        const OracleBatch& b = batches[s - 1];
        net.zero_grad();
        losses.push_back(net.forward(b.tokens.data(), b.targets.data(), B, T));
        net.backward();
        grads.insert(grads.end(), net.grad_data(), net.grad_data() + net.num_params());
        const GradClip c = grad_clip(net, clip);
        norms.push_back(c.norm);
        opt.update(net, lrs[s - 1], s, c.scale);
    }
    {
        std::ofstream out(dir.path() / "sinklab_grads.bin", std::ios::binary);
        out.write(reinterpret_cast<const char*>(grads.data()), static_cast<std::streamsize>(grads.size() * sizeof(float)));
        ASSERT_TRUE(out.good());
    }

    ASSERT_TRUE(test::run_oracle({dir.path()}));
    const test::OracleReference ref = test::read_oracle_reference(dir.path());
    const auto& adamw = ref.info.at("adamw");
    const double* torch_grads = ref.section("adamw_grads");
    bool clipped = false;
    for (int s = 0; s < steps; ++s) {
        SCOPED_TRACE("step " + std::to_string(s + 1));
        const double loss = adamw.at("losses")[s].get<double>(), norm = adamw.at("grad_norms")[s].get<double>();
        EXPECT_NEAR(losses[s], loss, kLossTol * loss) << "loss";
        EXPECT_NEAR(norms[s], norm, kNormTol * norm) << "gradient norm before clipping";
        clipped = clipped || norm > clip;
        const test::GradientReport g = test::compare_gradients(
            net, grads.data() + static_cast<size_t>(s) * net.num_params(), torch_grads + static_cast<size_t>(s) * net.num_params(),
            kGradTol);
        EXPECT_TRUE(g.failures.empty()) << "worst gradient " << test::describe(g.worst) << "\nall gradients beyond "
                                        << kGradTol << " relative:" << g.failures;
    }
    EXPECT_TRUE(clipped) << "no step was clipped: lower the clip so that clipping is tested";

    const double* after = ref.section("adamw_params");
    test::TensorError worst;
    std::string failures;
    for (const ParamInfo& p : net.params()) {
        const test::TensorError e = test::tensor_error(p.name, net.param_data() + p.offset, after + p.offset, p.numel);
        if (e.error > kParamTol) failures += "\n  " + test::describe(e);
        if (e.error > worst.error || worst.name.empty()) worst = e;
        double moved = 0.0;  // a tensor the steps left alone would show nothing
        for (size_t i = 0; i < p.numel; ++i)
            moved = std::max(moved, std::abs(static_cast<double>(net.param_data()[p.offset + i]) - initial[p.offset + i]));
        EXPECT_GT(moved, 0.1 * min_lr) << p.name << " barely changed in " << steps << " steps";
    }
    EXPECT_TRUE(failures.empty()) << "worst parameter " << test::describe(worst) << "\nall beyond " << kParamTol
                                  << " relative:" << failures;
    std::cout << "[ oracle   ] " << name << ": losses " << losses[0] << " " << losses[1] << " " << losses[2]
              << ", grad norms " << norms[0] << " " << norms[1] << " " << norms[2] << ", worst parameter "
              << test::describe(worst) << "\n";
}

TEST(AdamWOracle, ThreeStepsMatchTorchGpt2) { run_three_steps("gpt2", small("gpt2")); }

TEST(AdamWOracle, ThreeStepsMatchTorchLlamaGqa) { run_three_steps("llama_gqa", small("llama")); }

}  // namespace
}  // namespace sinklab
