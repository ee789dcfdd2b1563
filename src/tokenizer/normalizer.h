#pragma once
// Hugging Face tokenizer.json normalizers that byte-level BPE models use: the Unicode normal forms
// (Qwen2 applies NFC before splitting), alone or in a Sequence. Backed by ICU.
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <unicode/uversion.h>

U_NAMESPACE_BEGIN
class Normalizer2;
U_NAMESPACE_END

namespace sinklab {

class Normalizer {
public:
    Normalizer() = default;  // the identity (tokenizer.json "normalizer": null)
    // `spec` is tokenizer.json's "normalizer" value; `origin` names the file for errors.
    Normalizer(const nlohmann::json& spec, const std::string& origin);

    // Ill-formed UTF-8 passes through unchanged.
    std::string normalize(std::string_view text) const;

private:
    std::vector<const icu::Normalizer2*> forms_;  // applied in order; owned by ICU
};

}  // namespace sinklab
