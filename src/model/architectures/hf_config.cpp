#include "model/architectures/hf_config.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "model/checkpoint.h"

namespace sinklab {

HfConfig::HfConfig(const std::filesystem::path& file) : HfConfig(read_json_file(file, "config"), file) {}

HfConfig::HfConfig(nlohmann::json json, std::filesystem::path file) : json_(std::move(json)), file_(std::move(file)) {
    SINKLAB_CHECK(json_.is_object(), "config", "{}: expected a JSON object {{\"model_type\": ..., ...}}",
                  file_.string());
}

void HfConfig::fail(std::string_view key, const std::string& problem) const {
    sinklab::fail("config", "{}: {} {}", file_.string(), key, problem);
}

const nlohmann::json* HfConfig::find(std::string_view key) const {
    auto it = json_.find(key);
    return it == json_.end() || it->is_null() ? nullptr : &*it;
}

bool HfConfig::has(std::string_view key) const { return find(key) != nullptr; }

std::string HfConfig::model_type() const {
    const nlohmann::json* value = find("model_type");
    if (!value) sinklab::fail("config", "{}: no model_type; not a Hugging Face model config", file_.string());
    if (!value->is_string()) fail("model_type", "must be a string, got " + value->dump());
    return value->get<std::string>();
}

int HfConfig::positive_int(std::string_view key) const {
    if (!has(key)) fail(key, "is missing (a required key)");
    return positive_int(key, 0);
}

int HfConfig::positive_int(std::string_view key, int fallback) const {
    const nlohmann::json* value = find(key);
    if (!value) return fallback;
    // Integral floats (64.0) are accepted as Python's json writes them for some configs.
    const bool integral = value->is_number_integer() ||
                          (value->is_number_float() && std::floor(value->get<double>()) == value->get<double>());
    if (!integral || value->get<double>() < 1 || value->get<double>() > std::numeric_limits<int>::max())
        fail(key, "must be a positive integer, got " + value->dump());
    return static_cast<int>(value->get<double>());
}

double HfConfig::number(std::string_view key, double fallback) const {
    const nlohmann::json* value = find(key);
    if (!value) return fallback;
    if (!value->is_number()) fail(key, "must be a number, got " + value->dump());
    return value->get<double>();
}

double HfConfig::positive_number(std::string_view key, double fallback) const {
    const double v = number(key, fallback);
    if (!(v > 0) || !std::isfinite(v)) fail(key, "must be a positive number, got " + find(key)->dump());
    return v;
}

bool HfConfig::boolean(std::string_view key, bool fallback) const {
    const nlohmann::json* value = find(key);
    if (!value) return fallback;
    if (!value->is_boolean()) fail(key, "must be true or false, got " + value->dump());
    return value->get<bool>();
}

std::string HfConfig::string(std::string_view key, const std::string& fallback) const {
    const nlohmann::json* value = find(key);
    if (!value) return fallback;
    if (!value->is_string()) fail(key, "must be a string, got " + value->dump());
    return value->get<std::string>();
}

std::vector<int32_t> HfConfig::token_ids(std::string_view key) const {
    const nlohmann::json* value = find(key);
    if (!value) return {};
    auto id = [&](const nlohmann::json& v) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > std::numeric_limits<int32_t>::max())
            fail(key, "must be a token id or a list of token ids, got " + value->dump());
        return static_cast<int32_t>(v.get<int64_t>());
    };
    std::vector<int32_t> ids;
    if (value->is_array()) {
        for (const auto& v : *value) ids.push_back(id(v));
    } else {
        ids.push_back(id(*value));
    }
    return ids;
}

const nlohmann::json& HfConfig::at(std::string_view key) const {
    const nlohmann::json* value = find(key);
    if (!value) fail(key, "is missing (a required key)");
    return *value;
}

void HfConfig::require_unset(std::string_view key, std::string_view why) const {
    const nlohmann::json* value = find(key);
    if (value) fail(key, fmt::format("is {}, which sinklab does not support: {}", value->dump(), why));
}

}  // namespace sinklab
