#pragma once
// Reading transformers' tokenizer_config.json, shared by the loaders that take one.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace sinklab {

// A special-token entry (bos_token, cls_token, ...): a string or {"content": ...}; none otherwise.
inline std::optional<std::string> special_token_content(const nlohmann::json& value) {
    if (value.is_string()) return value.get<std::string>();
    if (value.is_object() && value.contains("content") && value.at("content").is_string())
        return value.at("content").get<std::string>();
    return std::nullopt;
}

}  // namespace sinklab
