#pragma once
// Token ids read from files. Tokenizers keep one slot per id up to the largest (ids may have gaps),
// so a file's largest id sizes their tables: it is checked against a documented limit before
// anything is allocated, and read without truncation or float-to-int conversion.
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

namespace sinklab {

// The largest vocabulary sinklab loads: 2^21 = 2,097,152 ids, eight times Gemma 3's 262,144 (the
// largest of the published families; XLM-V's 901,629 fits too). At this size the id tables of a
// hostile file stay under 100 MB.
constexpr int64_t kMaxVocabSize = int64_t{1} << 21;

// `value` as an id in [0, kMaxVocabSize); otherwise throws naming `origin` and `what` (e.g.
// `token "a"`).
int32_t checked_token_id(int64_t value, std::string_view origin, std::string_view what);
// The same for a JSON value, which must be an integer (1e300, 1.5, "7" and -1 are refused).
int32_t token_id_from_json(const nlohmann::json& value, std::string_view origin, std::string_view what);

}  // namespace sinklab
