#pragma once
// A string-keyed hash map that can be searched with a string_view without building a std::string
// (tokenizers look up millions of substrings).
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sinklab {

struct StringViewHash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringViewHash, std::equal_to<>>;

}  // namespace sinklab
