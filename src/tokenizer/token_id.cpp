#include "tokenizer/token_id.h"

#include "core/error.h"

namespace sinklab {

namespace {

[[noreturn]] void refuse(std::string_view origin, std::string_view what, std::string_view id) {
    fail("tokenizer", "{}: {} has id {}, outside [0, {}) (sinklab's largest vocabulary, 2^21)", origin, what, id,
         kMaxVocabSize);
}

}  // namespace

int32_t checked_token_id(int64_t value, std::string_view origin, std::string_view what) {
    if (value < 0 || value >= kMaxVocabSize) refuse(origin, what, std::to_string(value));
    return static_cast<int32_t>(value);
}

int32_t token_id_from_json(const nlohmann::json& value, std::string_view origin, std::string_view what) {
    // nlohmann keeps integers as int64 or uint64 exactly; get<int32_t> would truncate them, and
    // converting a float beyond int's range is undefined behaviour.
    if (value.is_number_unsigned() && value.get<uint64_t>() >= static_cast<uint64_t>(kMaxVocabSize))
        refuse(origin, what, value.dump());
    if (value.is_number_integer()) return checked_token_id(value.get<int64_t>(), origin, what);
    fail("tokenizer", "{}: {} has id {}, not an integer", origin, what, value.dump());
}

}  // namespace sinklab
