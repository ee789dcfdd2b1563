#include "attention/attention_spec.h"

#include <charconv>
#include <cmath>

#include "core/error.h"

namespace sinklab {

namespace {

using K = AttentionKind;

struct NamedDesign {
    const char* name;
    AttentionSpec spec;
};

// Every named design (DESIGN.md section 3); the fixed-bias sigmoid:<b> is parsed apart.
const std::vector<NamedDesign>& named_designs() {
    static const std::vector<NamedDesign> designs = {
        {"softmax", {}},
        {"sink_token", {.sink_token = true}},
        {"kv_bias", {.slot = SlotKind::kv}},
        {"kv_bias_shared", {.slot = SlotKind::kv, .shared_heads = true}},
        {"k_bias", {.slot = SlotKind::k}},
        {"k_bias_shared", {.slot = SlotKind::k, .shared_heads = true}},
        {"v_bias", {.value_bias = true}},
        {"v_bias_shared", {.shared_heads = true, .value_bias = true}},
        {"softmax1", {.slot = SlotKind::zero}},
        {"score_bias", {.slot = SlotKind::score}},
        {"sigmoid", {.kind = K::sigmoid, .normalised = false}},
        {"sigmoid_learnable", {.kind = K::sigmoid, .normalised = false, .sigmoid_bias_learnable = true}},
        {"sigmoid_learnable_shared",
         {.kind = K::sigmoid, .normalised = false, .shared_heads = true, .sigmoid_bias_learnable = true}},
        {"sigmoid_norm", {.kind = K::sigmoid}},
        {"elu1", {.kind = K::elu1, .normalised = false}},
        {"elu1_norm", {.kind = K::elu1}},
        {"linear_elu", {.kind = K::linear_elu}},
        {"identity", {.kind = K::identity, .normalised = false}},
        {"identity_norm", {.kind = K::identity}},
        {"softpick", {.kind = K::softpick}},
        {"gated", {.gate = GateKind::elementwise}},
        {"gated_headwise", {.gate = GateKind::headwise}},
    };
    return designs;
}

constexpr const char* kSigmoidPrefix = "sigmoid:";

}  // namespace

std::vector<std::string> AttentionSpec::known_names() {
    std::vector<std::string> names;
    for (const auto& d : named_designs()) names.emplace_back(d.name);
    return names;
}

AttentionSpec AttentionSpec::parse(const std::string& name) {
    for (const auto& d : named_designs())
        if (name == d.name) return d.spec;
    if (name.starts_with(kSigmoidPrefix)) {
        const char* first = name.data() + std::char_traits<char>::length(kSigmoidPrefix);
        const char* last = name.data() + name.size();
        float b = 0.0f;
        const auto [end, ec] = std::from_chars(first, last, b);
        SINKLAB_CHECK(ec == std::errc() && end == last && first != last && std::isfinite(b), "attention",
                      "attention design '{}': expected sigmoid:<b> with a finite number b (e.g. sigmoid:-7.62)", name);
        AttentionSpec spec = parse("sigmoid");
        spec.sigmoid_bias = b;
        return spec;
    }
    std::string known;
    for (const auto& n : known_names()) known += (known.empty() ? "" : ", ") + n;
    fail("attention", "unknown attention design '{}' (known: {}; and sigmoid:<b> for a fixed score bias b)", name,
         known);
}

std::string AttentionSpec::name() const {
    AttentionSpec bare = *this;
    bare.scale = 0.0f;
    bare.softcap = 0.0f;
    for (const auto& d : named_designs())
        if (bare == d.spec) return d.name;
    bare.sigmoid_bias = 0.0f;
    if (bare == parse("sigmoid")) return fmt::format("{}{}", kSigmoidPrefix, sigmoid_bias);
    fail("attention", "this combination of attention settings has no design name "
                      "(AttentionSpec::known_names() lists the named ones)");
}

void AttentionSpec::validate() const {
    const bool has_unnormalised_form = kind == K::sigmoid || kind == K::elu1 || kind == K::identity;
    SINKLAB_CHECK(normalised || has_unnormalised_form, "attention",
                  "attention design '{}' is always normalised (only sigmoid, elu1 and identity have an "
                  "unnormalised form)",
                  kind == K::softmax ? "softmax" : kind == K::softpick ? "softpick" : "linear_elu");
    SINKLAB_CHECK(kind != K::linear_elu || slot == SlotKind::none, "attention",
                  "linear_elu is a kernel design: it has no score to give a slot column");
    SINKLAB_CHECK(kind == K::sigmoid || (sigmoid_bias == 0.0f && !sigmoid_bias_learnable), "attention",
                  "a sigmoid score bias needs the sigmoid design");
    SINKLAB_CHECK(std::isfinite(sigmoid_bias), "attention", "the sigmoid score bias must be finite");
    SINKLAB_CHECK(scale >= 0.0f && std::isfinite(scale), "attention",
                  "the attention scale must be >= 0 (0: 1/sqrt(head size))");
    SINKLAB_CHECK(softcap >= 0.0f && std::isfinite(softcap), "attention",
                  "the attention logit soft-cap must be >= 0 (0: off)");
    SINKLAB_CHECK(softcap == 0.0f || kind != K::linear_elu, "attention",
                  "linear_elu is a kernel design: it has no score to soft-cap");
}

void FirstKeyEdit::validate() const {
    SINKLAB_CHECK(hidden >= 0, "attention", "the number of hidden first keys must be >= 0, got {}", hidden);
    SINKLAB_CHECK(std::isfinite(factor) && factor > 0.0f, "attention",
                  "the first key's weight factor must be finite and > 0, got {} (to remove the key, hide it)", factor);
}

}  // namespace sinklab
