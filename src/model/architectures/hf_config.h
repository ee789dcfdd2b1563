#pragma once
// A Hugging Face config.json, read strictly: every getter checks the value's type and range and
// throws sinklab::Error("config", "<file>: <key> ...") naming the key, so that a malformed or
// hand-edited config fails at the door instead of building a nonsensical model.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sinklab {

class HfConfig {
public:
    // Reads and parses `file`; it must hold a JSON object.
    explicit HfConfig(const std::filesystem::path& file);
    HfConfig(nlohmann::json json, std::filesystem::path file);

    const std::filesystem::path& file() const { return file_; }
    const nlohmann::json& json() const { return json_; }
    std::string model_type() const;

    // Present with a value other than null (transformers writes null for "use the default").
    bool has(std::string_view key) const;
    // Required keys: absent or null is an error.
    int positive_int(std::string_view key) const;
    // Optional keys: absent or null gives the fallback.
    int positive_int(std::string_view key, int fallback) const;
    double positive_number(std::string_view key, double fallback) const;
    double number(std::string_view key, double fallback) const;
    bool boolean(std::string_view key, bool fallback) const;
    std::string string(std::string_view key, const std::string& fallback) const;
    // A token id: an integer or a list of them (Llama 3 lists several eos ids); empty when absent.
    std::vector<int32_t> token_ids(std::string_view key) const;
    // A required value of any type (for nested objects such as rope_scaling).
    const nlohmann::json& at(std::string_view key) const;
    // Refuses a key that is present with a value sinklab does not implement (e.g. clip_qkv).
    void require_unset(std::string_view key, std::string_view why) const;

    [[noreturn]] void fail(std::string_view key, const std::string& problem) const;

private:
    const nlohmann::json* find(std::string_view key) const;  // null when absent or null

    nlohmann::json json_;
    std::filesystem::path file_;
};

}  // namespace sinklab
