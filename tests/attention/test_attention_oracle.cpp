// Every attention design against PyTorch (tests/oracle/attention_designs_reference.py, written from
// the published formulas with autograd, in float64), for both kernels that differentiate: the
// output, the weights (materialised; the slot column for both) and the gradient of every input
// (qkv, slot, bias, relative-table and gate parameters), each within 1e-4 of the reference relative
// to the tensor's largest entry. One Python process for all cases; a missing torch is a failure,
// not a skip.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "../support/run_command.h"
#include "design_cases.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using test::DesignCase;
using test::Vec;

constexpr double kTolerance = 1e-4;

// max_i |a_i - b_i| / max_i |b_i|, with the worst element described.
std::string compare(const std::string& name, const Vec& actual, const double* expected, size_t n, double& error) {
    double worst = 0.0, scale = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; ++i) {
        scale = std::max(scale, std::abs(expected[i]));
        const double d = std::abs(static_cast<double>(actual[i]) - expected[i]);
        if (d > worst) {
            worst = d;
            at = i;
        }
    }
    error = worst / std::max(scale, 1e-30);
    return fmt::format("{}: relative error {:.3g} (element {} is {:.9g}, reference {:.9g})", name, error, at,
                       actual[at], expected[at]);
}

TEST(AttentionOracle, EveryDesignMatchesPyTorch) {
    const fs::path dir = fs::path(SINKLAB_BINARY_DIR) / "oracle_scratch" /
                         ("AttentionOracle." + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);

    // Inputs, dout and score biases of every case, with sinklab's results alongside.
    const std::vector<DesignCase> cases = test::oracle_design_cases();
    std::vector<float> flat;
    auto put = [&flat](const Vec& v) {
        const nlohmann::json at = {{"offset", flat.size()}, {"numel", v.size()}};
        flat.insert(flat.end(), v.begin(), v.end());
        return at;
    };
    nlohmann::json listed = nlohmann::json::array();
    std::map<std::string, Vec> ours;       // "<case>/<tensor>", the materialised kernel
    std::map<std::string, Vec> blockwise;  // the blockwise kernel (no weights matrix)
    const test::KernelChoice blockwise_kernel{true, {32, 48}};  // the long layouts cross strips and tiles
    for (const DesignCase& c : cases) {
        Rng rng(test::fnv1a(c.name + "/dout"));
        const Vec dout = test::random_vec(rng, c.out_size());
        const test::KernelRun run = test::run_forward(c, c.inputs);
        // scale-first (forward only) runs on the blockwise kernel for softmax rows; the other
        // designs take it on the materialised kernel only
        const bool block_runs = !c.forward_only || c.spec.kind == AttentionKind::softmax;
        const std::vector<Vec> grads = c.forward_only ? std::vector<Vec>() : test::run_backward(c, c.inputs, dout);
        const test::KernelRun block_run =
            block_runs ? test::run_forward(c, c.inputs, blockwise_kernel) : test::KernelRun{};
        const std::vector<Vec> block_grads =
            c.forward_only ? std::vector<Vec>() : test::run_backward(c, c.inputs, dout, blockwise_kernel);
        ours[c.name + "/out"] = run.out;
        ours[c.name + "/weights"] = run.weights;
        if (block_runs) blockwise[c.name + "/out"] = block_run.out;
        if (c.spec.has_slot()) {
            ours[c.name + "/slot_weights"] = run.slot_weights;
            if (block_runs) blockwise[c.name + "/slot_weights"] = block_run.slot_weights;
        }
        nlohmann::json inputs = nlohmann::json::array();
        for (size_t i = 0; i < c.inputs.size(); ++i) {
            const auto infos = attention_param_infos(c.spec, c.dims.NH, c.dims.HS);
            std::vector<int> shape = {c.dims.B, c.dims.T, static_cast<int>(c.dims.qkv_stride())};
            for (const auto& info : infos)
                if (info.name == c.input_names[i]) shape = info.shape;
            if (c.input_names[i] == "gate")
                shape = {c.dims.B, c.dims.T, output_gate_width(c.spec.gate, c.dims.NH, c.dims.HS)};
            if (c.input_names[i] == "relative_table") shape = {kRelativeBuckets, c.dims.NH};
            nlohmann::json entry = put(c.inputs[i]);
            entry["name"] = c.input_names[i];
            entry["shape"] = shape;
            inputs.push_back(entry);
            if (!c.forward_only) {
                ours[c.name + "/d" + c.input_names[i]] = grads[i];
                blockwise[c.name + "/d" + c.input_names[i]] = block_grads[i];
            }
        }
        listed.push_back({{"name", c.name},
                          {"design", c.design},
                          {"B", c.dims.B},
                          {"T", c.dims.T},
                          {"NH", c.dims.NH},
                          {"NKV", c.dims.NKV},
                          {"HS", c.dims.HS},
                          {"window", c.mask.window},
                          {"prefix", c.mask.prefix},
                          {"hidden_first", c.mask.first_keys.hidden},
                          {"first_key_factor", c.mask.first_keys.factor},
                          {"forward_only", c.forward_only},
                          {"scale", attention_scale(c.spec, c.dims.HS)},
                          {"softcap", c.spec.softcap},
                          {"position_bias", c.bias == ScoreBiasKind::alibi      ? "alibi"
                                            : c.bias == ScoreBiasKind::relative ? "relative"
                                                                                : "none"},
                          {"dout", put(dout)},
                          {"inputs", inputs}});
    }
    std::ofstream(dir / "cases.json") << nlohmann::json{{"cases", listed}}.dump(1);
    std::ofstream(dir / "inputs.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(flat.data()), static_cast<std::streamsize>(flat.size() * sizeof(float)));

    const fs::path script = fs::path(SINKLAB_SOURCE_DIR) / "tests" / "oracle" / "attention_designs_reference.py";
    const test::CommandResult run =
        test::run_command(std::string(test::kPython) + " '" + script.string() + "' '" + dir.string() + "'");
    ASSERT_EQ(run.exit_code, 0) << "the PyTorch reference failed (run /usr/bin/python3 on "
                                << "tests/oracle/attention_designs_reference.py " << dir << "):\n"
                                << run.output;

    const nlohmann::json info = nlohmann::json::parse(std::ifstream(dir / "reference.json"));
    ASSERT_EQ(info.at("dtype"), "float64");
    size_t count = 0;
    for (const auto& s : info.at("sections")) count += s[1].get<size_t>();
    std::vector<double> reference(count);
    std::ifstream bin(dir / "reference.bin", std::ios::binary);
    bin.read(reinterpret_cast<char*>(reference.data()), static_cast<std::streamsize>(count * sizeof(double)));
    ASSERT_EQ(static_cast<size_t>(bin.gcount()), count * sizeof(double)) << dir / "reference.bin" << " is short";

    size_t offset = 0, compared = 0, compared_blockwise = 0;
    double worst = 0.0;
    std::string worst_line;
    for (const auto& s : info.at("sections")) {
        const std::string name = s[0].get<std::string>();
        const size_t n = s[1].get<size_t>();
        const auto it = ours.find(name);
        ASSERT_NE(it, ours.end()) << "the reference has " << name << ", sinklab does not";
        ASSERT_EQ(it->second.size(), n) << name;
        double error = 0.0;
        const std::string line = compare(name, it->second, reference.data() + offset, n, error);
        EXPECT_LE(error, kTolerance) << line;
        if (error >= worst) {
            worst = error;
            worst_line = line;
        }
        const auto block = blockwise.find(name);
        if (block != blockwise.end()) {
            ASSERT_EQ(block->second.size(), n) << name << " (blockwise)";
            const std::string block_line = compare(name + " (blockwise)", block->second, reference.data() + offset, n, error);
            EXPECT_LE(error, kTolerance) << block_line;
            if (error >= worst) {
                worst = error;
                worst_line = block_line;
            }
            ++compared_blockwise;
        }
        offset += n;
        ++compared;
    }
    EXPECT_EQ(compared, ours.size()) << "sinklab computed tensors the reference did not return";
    EXPECT_EQ(compared_blockwise, blockwise.size()) << "the blockwise kernel computed tensors the reference did not return";
    std::printf("%zu + %zu (blockwise) tensors of %zu cases compared; worst %s\n", compared, compared_blockwise,
                cases.size(), worst_line.c_str());
    if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace sinklab
