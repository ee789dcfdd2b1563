#pragma once
// The C++ side of the engine oracle (tests/oracle/engine_reference.py): writes a case folder
// (case.json + params.bin), runs the PyTorch reference on it, reads reference.json + reference.bin
// back, and compares sinklab's tensors with the reference tensor by tensor.
// The interchange format is described at the top of engine_reference.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "../support/run_command.h"
#include "core/rng.h"
#include "model/transformer.h"

namespace sinklab::test {

namespace fs = std::filesystem;


inline fs::path oracle_script() { return fs::path(SINKLAB_SOURCE_DIR) / "tests" / "oracle" / "engine_reference.py"; }

// A fresh folder for the running test under the build tree, removed when the test passes (kept on
// failure, to rerun the reference by hand).
class OracleDir {
public:
    explicit OracleDir(const std::string& name) {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        path_ = fs::path(SINKLAB_BINARY_DIR) / "oracle_scratch" /
                (std::string(info->test_suite_name()) + "." + info->name() + "." + name + "." +
                 std::to_string(::getpid()));
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~OracleDir() {
        std::error_code ec;
        if (!::testing::Test::HasFailure()) fs::remove_all(path_, ec);
    }
    OracleDir(const OracleDir&) = delete;
    OracleDir& operator=(const OracleDir&) = delete;
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

struct OracleBatch {
    int B = 0, T = 0;
    std::vector<int32_t> tokens, targets;  // (B, T)
};

// Uniform random tokens; targets are the next tokens (random for the last position), with
// `ignored` positions of each sequence (from the start) set to -1.
inline OracleBatch random_batch(Rng& rng, int B, int T, int vocab, int ignored = 0) {
    OracleBatch b{B, T, std::vector<int32_t>(static_cast<size_t>(B) * T), std::vector<int32_t>(static_cast<size_t>(B) * T)};
    for (auto& t : b.tokens) t = static_cast<int32_t>(rng.below(vocab));
    for (int s = 0; s < B; ++s)
        for (int t = 0; t < T; ++t) {
            const size_t i = static_cast<size_t>(s) * T + t;
            b.targets[i] = t < ignored ? -1 : t + 1 < T ? b.tokens[i + 1] : static_cast<int32_t>(rng.below(vocab));
        }
    return b;
}

// init_weights, then every vector (norm weights, biases) moved off its 1 or 0 so that its
// gradient path is exercised with a non-trivial value.
inline void randomize_weights(Transformer& model, uint64_t seed) {
    model.init_weights(seed);
    Rng rng(seed ^ 0x5eed);
    for (const ParamInfo& p : model.params()) {
        if (p.shape.size() != 1) continue;
        float* w = model.param(p.name);
        for (size_t i = 0; i < p.numel; ++i) w[i] += static_cast<float>(0.2 * rng.normal());
    }
}

// Writes case.json and params.bin for `model` and `batch`; `extra` keys (e.g. "adamw") are merged in.
inline void write_oracle_case(const fs::path& dir, const Transformer& model, const OracleBatch& batch,
                              const nlohmann::json& extra = nlohmann::json::object()) {
    nlohmann::json params = nlohmann::json::array();
    for (const ParamInfo& p : model.params())
        params.push_back({{"name", p.name}, {"shape", p.shape}, {"offset", p.offset}, {"numel", p.numel}, {"decay", p.decay}});
    nlohmann::json c = {{"config", model.config().to_json()},
                        {"params", params},
                        {"num_params", model.num_params()},
                        {"B", batch.B},
                        {"T", batch.T},
                        {"tokens", batch.tokens},
                        {"targets", batch.targets}};
    for (const auto& [key, value] : extra.items()) c[key] = value;
    std::ofstream(dir / "case.json") << c.dump(1);
    std::ofstream out(dir / "params.bin", std::ios::binary);
    out.write(reinterpret_cast<const char*>(model.param_data()), static_cast<std::streamsize>(model.num_params() * sizeof(float)));
    ASSERT_TRUE(out.good()) << "could not write " << dir / "params.bin";
}

// Runs a Python reference `script` on the folders. Returns false (with a test failure carrying
// the script's output) when it fails; a missing torch is a failure, not a skip.
inline bool run_python_reference(const fs::path& script, const std::vector<fs::path>& dirs) {
    std::string command = std::string(kPython) + " '" + script.string() + "'";
    for (const auto& d : dirs) command += " '" + d.string() + "'";
    const CommandResult r = run_command(command);
    if (r.exit_code != 0) {
        ADD_FAILURE() << "the PyTorch reference failed (exit status " << r.exit_code << "): " << command << "\n"
                      << r.output;
        return false;
    }
    return true;
}

// The engine's reference (engine_reference.py) on the folders.
inline bool run_oracle(const std::vector<fs::path>& dirs) { return run_python_reference(oracle_script(), dirs); }

struct OracleReference {
    nlohmann::json info;  // reference.json
    std::vector<double> values;
    // A section of reference.bin by name ("logits", "grads", "adamw_params").
    const double* section(const std::string& name) const {
        size_t offset = 0;
        for (const auto& s : info.at("sections")) {
            if (s[0].get<std::string>() == name) return values.data() + offset;
            offset += s[1].get<size_t>();
        }
        ADD_FAILURE() << "reference.bin has no section '" << name << "'";
        return nullptr;
    }
};

inline OracleReference read_oracle_reference(const fs::path& dir) {
    OracleReference r;
    std::ifstream j(dir / "reference.json");
    r.info = nlohmann::json::parse(j);
    EXPECT_EQ(r.info.at("dtype"), "float64");
    size_t count = 0;
    for (const auto& s : r.info.at("sections")) count += s[1].get<size_t>();
    r.values.resize(count);
    std::ifstream bin(dir / "reference.bin", std::ios::binary);
    bin.read(reinterpret_cast<char*>(r.values.data()), static_cast<std::streamsize>(count * sizeof(double)));
    EXPECT_EQ(static_cast<size_t>(bin.gcount()), count * sizeof(double)) << dir / "reference.bin" << " is short";
    return r;
}

// max_i |a_i - b_i| / max_i |b_i| over one tensor (b the reference): the error of the tensor
// relative to its own scale.
struct TensorError {
    std::string name;
    double error = 0.0;
    double scale = 0.0;  // max |b|
    size_t worst = 0;    // element with the largest |a - b|
    double actual = 0.0, expected = 0.0;
};

inline TensorError tensor_error(const std::string& name, const float* a, const double* b, size_t n) {
    TensorError e;
    e.name = name;
    double worst = -1.0;
    for (size_t i = 0; i < n; ++i) {
        e.scale = std::max(e.scale, std::abs(b[i]));
        const double d = std::abs(static_cast<double>(a[i]) - b[i]);
        if (d > worst) {
            worst = d;
            e.worst = i;
        }
    }
    e.actual = a[e.worst];
    e.expected = b[e.worst];
    e.error = std::max(worst, 0.0) / std::max(e.scale, 1e-30);
    return e;
}

inline std::string describe(const TensorError& e) {
    return fmt::format("{}: relative error {:.3g} (scale {:.3g}; element {} is {:.9g}, reference {:.9g})", e.name,
                       e.error, e.scale, e.worst, e.actual, e.expected);
}

// Every parameter's gradient against the reference, tensor by tensor: max_i |a_i - b_i| <=
// rel_tol * max_i |b_i|. A tensor whose exact gradient vanishes (the key bias: softmax is invariant
// to adding q.b_k to a whole row of scores) has only rounding noise to compare; such a tensor
// (reference max below 1e-12 x the model's largest gradient entry) must instead keep sinklab's
// entries below 1e-6 x that largest entry.
struct GradientReport {
    TensorError worst;       // the largest relative error among the compared tensors
    std::string failures;    // one line per failing tensor, empty when all pass
    int vanishing = 0;       // tensors checked absolutely
};

inline GradientReport compare_gradients(const Transformer& model, const float* grads, const double* reference,
                                        double rel_tol) {
    constexpr double kVanishing = 1e-12, kVanishingTol = 1e-6;
    double model_scale = 0.0;
    for (size_t i = 0; i < model.num_params(); ++i) model_scale = std::max(model_scale, std::abs(reference[i]));
    GradientReport r;
    if (model_scale == 0.0) {
        r.failures = "\n  the reference gradient is zero everywhere";
        return r;
    }
    for (const ParamInfo& p : model.params()) {
        const float* a = grads + p.offset;
        const double* b = reference + p.offset;
        const TensorError e = tensor_error(p.name, a, b, p.numel);
        if (e.scale < kVanishing * model_scale) {
            ++r.vanishing;
            double largest = 0.0;
            for (size_t i = 0; i < p.numel; ++i) largest = std::max(largest, std::abs(static_cast<double>(a[i])));
            if (largest > kVanishingTol * model_scale)
                r.failures += fmt::format("\n  {}: the exact gradient is zero, sinklab's reaches {:.3g} (model scale {:.3g})",
                                          p.name, largest, model_scale);
            continue;
        }
        if (e.error > rel_tol) r.failures += "\n  " + describe(e);
        if (e.error > r.worst.error || r.worst.name.empty()) r.worst = e;
    }
    return r;
}

}  // namespace sinklab::test
