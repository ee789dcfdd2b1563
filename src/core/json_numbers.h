#pragma once
// Numbers read from JSON files, without undefined behaviour. nlohmann's get<int>() cuts a 64-bit
// integer to 32 bits and converts a float with a static_cast, which is undefined behaviour outside
// the target's range ({"layers": 1e300}); these accept only what fits and throw naming `what`.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace sinklab {

// An integer (not 2.0, not "2") within [lowest, highest].
inline int64_t json_integer(const nlohmann::json& value, const std::string& module, std::string_view what,
                            int64_t lowest = std::numeric_limits<int64_t>::min(),
                            int64_t highest = std::numeric_limits<int64_t>::max()) {
    const bool fits = value.is_number_unsigned() ? value.get<uint64_t>() <= static_cast<uint64_t>(highest)
                                                 : value.is_number_integer();
    if (fits) {
        const int64_t x = value.get<int64_t>();
        if (x >= lowest && x <= highest) return x;
    }
    fail(module, "{} must be an integer from {} to {}, got {}", what, lowest, highest, value.dump());
}

inline int json_int(const nlohmann::json& value, const std::string& module, std::string_view what) {
    return static_cast<int>(json_integer(value, module, what, std::numeric_limits<int>::min(),
                                         std::numeric_limits<int>::max()));
}

// A number within float's range (JSON has no NaN or infinity).
inline float json_float(const nlohmann::json& value, const std::string& module, std::string_view what) {
    if (value.is_number()) {
        const double x = value.get<double>();
        if (std::abs(x) <= std::numeric_limits<float>::max()) return static_cast<float>(x);
    }
    fail(module, "{} must be a number within float's range, got {}", what, value.dump());
}

}  // namespace sinklab
