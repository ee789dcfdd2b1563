#include "model/sink_interventions.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace sinklab {

namespace {

struct KindName {
    SinkInterventionKind kind;
    const char* form;  // as --help and errors show it
};

constexpr KindName kKinds[] = {
    {SinkInterventionKind::mask_first, "mask-first:K"},   {SinkInterventionKind::scale_first, "scale-first:F"},
    {SinkInterventionKind::replace_first, "replace-first:ID"}, {SinkInterventionKind::mask_slot, "mask-slot"},
    {SinkInterventionKind::drop_bos, "drop-bos"},
};

std::string allowed_forms(const std::vector<SinkInterventionKind>& allowed) {
    std::string out;
    for (const KindName& k : kKinds)
        if (std::find(allowed.begin(), allowed.end(), k.kind) != allowed.end()) out += (out.empty() ? "" : ", ") + std::string(k.form);
    return out;
}

// The text after "name:" as a number of type T; false when it is not one, whole.
template <typename T>
bool parse_number(const std::string& text, T& value) {
    const char* end = text.data() + text.size();
    const auto [stop, ec] = std::from_chars(text.data(), end, value);
    return !text.empty() && ec == std::errc() && stop == end;
}

}  // namespace

SinkIntervention SinkIntervention::parse(const std::string& text, const std::string& flag,
                                         const std::vector<SinkInterventionKind>& allowed) {
    const size_t colon = text.find(':');
    const std::string head = text.substr(0, colon);
    const std::string arg = colon == std::string::npos ? "" : text.substr(colon + 1);
    const bool has_arg = colon != std::string::npos;
    SinkIntervention s;
    auto is = [&](const char* name, SinkInterventionKind kind, bool takes_arg) {
        if (head != name) return false;
        s.kind = kind;
        SINKLAB_CHECK(std::find(allowed.begin(), allowed.end(), kind) != allowed.end(), "model",
                      "{} '{}': {} is not one of {}'s forms (expected {})", flag, text, name, flag,
                      allowed_forms(allowed));
        SINKLAB_CHECK(has_arg == takes_arg, "model", "{} '{}': {}", flag, text,
                      takes_arg ? "expected a value after the colon, e.g. " + std::string(name) + ":1"
                                : std::string(name) + " takes no value");
        return true;
    };
    if (is("mask-first", SinkInterventionKind::mask_first, true)) {
        SINKLAB_CHECK(parse_number(arg, s.count), "model", "{} '{}': K must be a whole number of keys", flag, text);
        SINKLAB_CHECK(s.count >= 1, "model", "{} '{}': K must be at least 1 (mask-first:0 would mask nothing)", flag,
                      text);
    } else if (is("scale-first", SinkInterventionKind::scale_first, true)) {
        SINKLAB_CHECK(parse_number(arg, s.factor) && std::isfinite(s.factor) && s.factor >= 0.0f, "model",
                      "{} '{}': F must be a finite number >= 0 (1 leaves the model as it is)", flag, text);
    } else if (is("replace-first", SinkInterventionKind::replace_first, true)) {
        SINKLAB_CHECK(parse_number(arg, s.token) && s.token >= 0, "model", "{} '{}': ID must be a token id >= 0", flag,
                      text);
    } else if (!is("mask-slot", SinkInterventionKind::mask_slot, false) &&
               !is("drop-bos", SinkInterventionKind::drop_bos, false)) {
        fail("model", "{} '{}': unknown intervention (expected {})", flag, text, allowed_forms(allowed));
    }
    return s;
}

std::string SinkIntervention::name() const {
    switch (kind) {
        case SinkInterventionKind::mask_first: return fmt::format("mask-first:{}", count);
        case SinkInterventionKind::scale_first: return fmt::format("scale-first:{}", factor);
        case SinkInterventionKind::replace_first: return fmt::format("replace-first:{}", token);
        case SinkInterventionKind::mask_slot: return "mask-slot";
        case SinkInterventionKind::drop_bos: return "drop-bos";
    }
    return "";
}

FirstKeyEdit SinkIntervention::first_key_edit() const {
    if (kind == SinkInterventionKind::mask_first) return {.hidden = count};
    if (kind == SinkInterventionKind::scale_first) return factor == 0.0f ? FirstKeyEdit{.hidden = 1} : FirstKeyEdit{.factor = factor};
    return {};
}

bool has_removable_slot(const AttentionSpec& spec) { return spec.has_slot() || spec.uses_sink_token(); }

AttentionSpec without_slot(const AttentionSpec& spec) {
    AttentionSpec bare = spec;
    bare.slot = SlotKind::none;
    bare.sink_token = false;
    // shared_heads also covers the value bias and a learnable sigmoid bias; alone it means nothing
    if (!bare.value_bias && !bare.sigmoid_bias_learnable) bare.shared_heads = false;
    return bare;
}

std::unique_ptr<Transformer> copy_without_slot(const Transformer& model) {
    const ModelConfig& c = model.config();
    SINKLAB_CHECK(has_removable_slot(c.attention), "model",
                  "mask-slot: attention design '{}' has no slot column or sink token to remove (designs with one: "
                  "sink_token, kv_bias, k_bias, softmax1, score_bias and their _shared forms)",
                  c.attention.name());
    ModelConfig bare = c;
    bare.attention = without_slot(c.attention);
    auto out = std::make_unique<Transformer>(bare);
    for (const ParamInfo& p : out->params()) {
        const ParamInfo* from = model.find(p.name);
        SINKLAB_ASSERT(from && from->numel == p.numel);
        std::memcpy(out->param_data() + p.offset, model.param_data() + from->offset, p.numel * sizeof(float));
    }
    return out;
}

}  // namespace sinklab
