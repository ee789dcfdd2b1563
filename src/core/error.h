#pragma once
// Errors: library code throws sinklab::Error tagged with its module ("[safetensors] ...");
// only main() prints and exits. SINKLAB_CHECK stays on in release builds.
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace sinklab {

class Error : public std::runtime_error {
public:
    Error(const std::string& module, const std::string& message)
        : std::runtime_error("[" + module + "] " + message), module_(module) {}
    const std::string& module() const { return module_; }

private:
    std::string module_;
};

template <typename... Args>
[[noreturn]] void fail(const std::string& module, fmt::format_string<Args...> format, Args&&... args) {
    throw Error(module, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace sinklab

#define SINKLAB_CHECK(cond, module, ...)                  \
    do {                                                  \
        if (!(cond)) ::sinklab::fail(module, __VA_ARGS__); \
    } while (0)

// An invariant of the code itself (not of user input): a failure is a sinklab bug.
#define SINKLAB_ASSERT(cond)                                                                    \
    do {                                                                                        \
        if (!(cond))                                                                            \
            ::sinklab::fail("internal", "assertion failed: {} ({}:{})", #cond, __FILE__, __LINE__); \
    } while (0)
