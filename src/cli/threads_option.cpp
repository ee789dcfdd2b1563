#include "cli/threads_option.h"

#include <charconv>
#include <string>

#include <fmt/format.h>

namespace sinklab::cli {

CLI::Option* add_threads_option(CLI::App& command, int& threads) {
    // Checked here rather than with CLI::NonNegativeNumber, whose message names a 300-digit bound.
    const CLI::Validator thread_count(
        [](std::string& text) -> std::string {
            int n = -1;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
            if (ec == std::errc() && end == text.data() + text.size() && n >= 0 && n <= kMaxThreads) return "";
            return fmt::format("'{}' is not a thread count: 0 (all cores) to {}", text, kMaxThreads);
        },
        fmt::format("0..{}", kMaxThreads), "thread count");
    return command.add_option("--threads", threads, "threads (0 = all cores)")->check(thread_count);
}

}  // namespace sinklab::cli
