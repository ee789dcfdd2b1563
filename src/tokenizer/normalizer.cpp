#include "tokenizer/normalizer.h"

#include <cstdint>

#include <nlohmann/json.hpp>
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>

#include "core/error.h"

namespace sinklab {
namespace {

const icu::Normalizer2* normal_form(const std::string& type, const std::string& origin) {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* form = nullptr;
    if (type == "NFC") {
        form = icu::Normalizer2::getNFCInstance(status);
    } else if (type == "NFD") {
        form = icu::Normalizer2::getNFDInstance(status);
    } else if (type == "NFKC") {
        form = icu::Normalizer2::getNFKCInstance(status);
    } else if (type == "NFKD") {
        form = icu::Normalizer2::getNFKDInstance(status);
    } else {
        fail("tokenizer", "{}: normalizer \"{}\" is not supported (sinklab reads NFC, NFD, NFKC, NFKD and Sequence)",
             origin, type);
    }
    if (U_FAILURE(status)) fail("tokenizer", "{}: ICU cannot provide {}: {}", origin, type, u_errorName(status));
    return form;
}

void collect_forms(const nlohmann::json& spec, const std::string& origin,
                   std::vector<const icu::Normalizer2*>& forms) {
    if (spec.is_null()) return;
    const std::string type = spec.value("type", "");
    if (type == "Sequence") {
        for (const nlohmann::json& inner : spec.at("normalizers")) collect_forms(inner, origin, forms);
    } else {
        forms.push_back(normal_form(type, origin));
    }
}

}  // namespace

Normalizer::Normalizer(const nlohmann::json& spec, const std::string& origin) {
    collect_forms(spec, origin, forms_);
}

std::string Normalizer::normalize(std::string_view text) const {
    SINKLAB_CHECK(text.size() < static_cast<size_t>(INT32_MAX), "tokenizer",
                  "text of {} bytes is too long to normalize in one call (ICU takes at most 2 GiB)", text.size());
    std::string current(text);
    for (const icu::Normalizer2* form : forms_) {
        std::string next;
        icu::StringByteSink<std::string> sink(&next);
        UErrorCode status = U_ZERO_ERROR;
        form->normalizeUTF8(0, icu::StringPiece(current.data(), static_cast<int32_t>(current.size())),
                            sink, nullptr, status);
        SINKLAB_CHECK(U_SUCCESS(status), "tokenizer", "Unicode normalization failed: {}", u_errorName(status));
        current = std::move(next);
    }
    return current;
}

}  // namespace sinklab
