#include "attention/attention_spec.h"

#include "core/error.h"

namespace sinklab {

std::vector<std::string> AttentionSpec::known_names() { return {"softmax"}; }

AttentionSpec AttentionSpec::parse(const std::string& name) {
    AttentionSpec spec;
    if (name == "softmax") {
        spec.kind = AttentionKind::softmax;
        return spec;
    }
    std::string known;
    for (const auto& n : known_names()) known += (known.empty() ? "" : ", ") + n;
    fail("attention", "unknown attention design '{}' (known: {})", name, known);
}

std::string AttentionSpec::name() const {
    switch (kind) {
        case AttentionKind::softmax: return "softmax";
    }
    return "?";
}

}  // namespace sinklab
