#include "model/architectures/rope_scaling.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "ops/rope.h"

namespace sinklab {

namespace {

// The keys of a rope_scaling object, read strictly (the object is not a config of its own).
class RopeScalingKeys {
public:
    RopeScalingKeys(const HfConfig& hf, const nlohmann::json& scaling) : hf_(hf), scaling_(scaling) {}

    double positive(const char* key) const {
        auto it = scaling_.find(key);
        if (it == scaling_.end() || !it->is_number() || !(it->get<double>() > 0))
            hf_.fail("rope_scaling", fmt::format("needs a positive number '{}', got {}", key,
                                                 it == scaling_.end() ? "nothing" : it->dump()));
        return it->get<double>();
    }
    bool has(const char* key) const { return scaling_.contains(key) && !scaling_[key].is_null(); }
    double positive(const char* key, double fallback) const { return has(key) ? positive(key) : fallback; }
    bool boolean(const char* key, bool fallback) const {
        if (!has(key)) return fallback;
        if (!scaling_[key].is_boolean())
            hf_.fail("rope_scaling", fmt::format("'{}' must be true or false, got {}", key, scaling_[key].dump()));
        return scaling_[key].get<bool>();
    }
    std::vector<double> factors(const char* key, size_t count) const {
        auto it = scaling_.find(key);
        if (it == scaling_.end() || !it->is_array() || it->size() != count)
            hf_.fail("rope_scaling", fmt::format("needs '{}', a list of {} numbers (one per rotated pair)", key, count));
        std::vector<double> values;
        for (const auto& v : *it) {
            if (!v.is_number() || !(v.get<double>() > 0))
                hf_.fail("rope_scaling", fmt::format("'{}' must hold positive numbers, got {}", key, v.dump()));
            values.push_back(v.get<double>());
        }
        return values;
    }

private:
    const HfConfig& hf_;
    const nlohmann::json& scaling_;
};

// Llama 3.1: low frequencies divided by `factor`, high ones kept, a smooth blend between.
std::vector<double> llama3_inv_freq(std::vector<double> inv_freq, const RopeScalingKeys& keys) {
    const double factor = keys.positive("factor");
    const double low_freq_factor = keys.positive("low_freq_factor");
    const double high_freq_factor = keys.positive("high_freq_factor");
    const double old_context = keys.positive("original_max_position_embeddings");
    const double low_freq_wavelen = old_context / low_freq_factor;
    const double high_freq_wavelen = old_context / high_freq_factor;
    for (double& f : inv_freq) {
        const double wavelen = 2.0 * M_PI / f;
        if (wavelen > low_freq_wavelen) {
            f /= factor;
        } else if (wavelen >= high_freq_wavelen) {
            const double smooth = (old_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
            f = (1.0 - smooth) * f / factor + smooth * f;
        }
    }
    return inv_freq;
}

// YaRN (Peng et al. 2023, arXiv 2309.00071), as transformers' _compute_yarn_parameters and
// openai/gpt-oss's RotaryEmbedding compute it: "NTK by parts" keeps the fast-rotating pairs
// (extrapolation), divides the slow ones by `factor` (interpolation) and ramps linearly between the
// pairs that turn beta_fast and beta_slow times over the original context; cos and sin are then
// multiplied by the attention factor, 0.1 ln(factor) + 1 unless given. Returns that factor.
double yarn_inv_freq(std::vector<double>& inv_freq, const RopeScalingKeys& keys, int rotary_dim, double theta,
                     double max_positions) {
    const double factor = keys.positive("factor");
    const double original = keys.positive("original_max_position_embeddings", max_positions);
    const double beta_fast = keys.positive("beta_fast", 32.0), beta_slow = keys.positive("beta_slow", 1.0);
    // the dimension pair (of rotary_dim / 2) that turns `rotations` times over the original context
    auto correction_dim = [&](double rotations) {
        return rotary_dim * std::log(original / (rotations * 2.0 * M_PI)) / (2.0 * std::log(theta));
    };
    double low = correction_dim(beta_fast), high = correction_dim(beta_slow);
    if (keys.boolean("truncate", true)) {
        low = std::floor(low);
        high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, rotary_dim - 1.0);
    if (low == high) high += 0.001;  // transformers' guard against a zero-width ramp
    for (size_t i = 0; i < inv_freq.size(); ++i) {
        const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
        inv_freq[i] = inv_freq[i] / factor * ramp + inv_freq[i] * (1.0 - ramp);
    }
    if (keys.has("attention_factor")) return keys.positive("attention_factor");
    auto mscale = [&](double m) { return factor <= 1.0 ? 1.0 : 0.1 * m * std::log(factor) + 1.0; };
    if (keys.has("mscale") && keys.has("mscale_all_dim"))  // DeepSeek's variant
        return mscale(keys.positive("mscale")) / mscale(keys.positive("mscale_all_dim"));
    return mscale(1.0);
}

}  // namespace

void read_rope_settings(const HfConfig& hf, ModelConfig& c, const char* theta_key, const char* partial_key) {
    c.rope_theta = hf.positive_number(theta_key, 10000.0);
    const double partial = hf.positive_number(partial_key, 1.0);
    if (partial > 1.0) hf.fail(partial_key, fmt::format("must be at most 1, got {}", partial));
    // transformers: int(head_dim * partial_rotary_factor)
    c.rotary_dim = static_cast<int>(c.hs() * partial);
    if (partial == 1.0 && c.hs() % 2 != 0)
        hf.fail("head_dim", fmt::format("is {}; RoPE rotates pairs of dimensions, so the head size must be even", c.hs()));
    if (c.rotary_dim < 2 || c.rotary_dim % 2 != 0)
        hf.fail(partial_key, fmt::format("gives {} rotated dimensions of a head of {}; RoPE needs an even number",
                                         c.rotary_dim, c.hs()));
    if (c.rotary_dim == c.hs()) c.rotary_dim = 0;
    if (!hf.has("rope_scaling")) return;

    const nlohmann::json& scaling = hf.at("rope_scaling");
    if (!scaling.is_object()) hf.fail("rope_scaling", "must be an object or null, got " + scaling.dump());
    const RopeScalingKeys keys(hf, scaling);
    // transformers reads "rope_type", and "type" in older configs
    std::string type;
    for (const char* key : {"rope_type", "type"})
        if (scaling.contains(key) && scaling[key].is_string()) {
            type = scaling[key].get<std::string>();
            break;
        }
    const std::vector<double> plain = RopeTable::default_inv_freq(c.rope_dim(), c.rope_theta);
    if (type == "default") return;
    if (type == "linear") {
        const double factor = keys.positive("factor");
        c.rope_inv_freq = plain;
        for (double& f : c.rope_inv_freq) f /= factor;
    } else if (type == "llama3") {
        c.rope_inv_freq = llama3_inv_freq(plain, keys);
    } else if (type == "longrope" || type == "su") {
        // Phi-3: the original context comes from the config's top level (factor = max / original)
        // or from rope_scaling; the short factors serve sequences up to it, the long ones beyond.
        const double original = hf.has("original_max_position_embeddings")
                                    ? hf.positive_int("original_max_position_embeddings")
                                    : keys.positive("original_max_position_embeddings");
        const double factor = hf.has("original_max_position_embeddings") ? c.max_seq_len / original
                                                                          : keys.positive("factor");
        const size_t pairs = plain.size();
        const std::vector<double> short_factor = keys.factors("short_factor", pairs);
        const std::vector<double> long_factor = keys.factors("long_factor", pairs);
        c.rope_inv_freq = plain;
        c.rope_long_inv_freq = plain;
        for (size_t i = 0; i < pairs; ++i) {
            c.rope_inv_freq[i] /= short_factor[i];
            c.rope_long_inv_freq[i] /= long_factor[i];
        }
        c.rope_long_from = static_cast<int>(original);
        c.rope_attention_factor = keys.has("attention_factor") ? keys.positive("attention_factor")
                                  : factor <= 1.0 ? 1.0
                                                  : std::sqrt(1.0 + std::log(factor) / std::log(original));
    } else if (type == "yarn") {
        c.rope_inv_freq = plain;
        c.rope_attention_factor = yarn_inv_freq(c.rope_inv_freq, keys, c.rope_dim(), c.rope_theta, c.max_seq_len);
    } else {
        hf.fail("rope_scaling", fmt::format("has rope type '{}', which sinklab does not implement (supported: "
                                            "default, linear, llama3, longrope, yarn)",
                                            type.empty() ? scaling.dump() : type));
    }
}

}  // namespace sinklab
