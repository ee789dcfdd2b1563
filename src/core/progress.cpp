#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace sinklab {

std::string format_duration(double seconds) {
    if (seconds < 0 || seconds != seconds) return "?";
    int s = static_cast<int>(seconds + 0.5);
    if (s < 60) return fmt::format("{}s", s);
    if (s < 3600) return fmt::format("{}m{:02d}s", s / 60, s % 60);
    return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
}

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), tty_(isatty(STDERR_FILENO)) {
    start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() {
    if (!finished_ && enabled_ && tty_ && done_ > 0) std::fputc('\n', stderr);
}

double Progress::elapsed_seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done, const std::string& detail) {
    done_ = done;
    detail_ = detail;
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    double since = std::chrono::duration<double>(now - last_draw_).count();
    // Terminals redraw often; logs get a line every 10 seconds so they stay readable.
    if (since < (tty_ ? 0.1 : 10.0) && done < total_) return;
    last_draw_ = now;
    draw(false);
}

void Progress::finish(const std::string& detail) {
    if (finished_) return;
    finished_ = true;
    done_ = total_;
    if (!detail.empty()) detail_ = detail;
    if (enabled_) draw(true);
}

void Progress::stop(const std::string& detail) {
    if (finished_) return;
    finished_ = true;
    detail_ = detail;
    if (enabled_) draw(true);
}

void Progress::draw(bool final_line) {
    double elapsed = elapsed_seconds();
    double frac = total_ > 0 ? static_cast<double>(done_) / total_ : 1.0;
    double eta = done_ > 0 ? elapsed * (total_ - done_) / done_ : -1;
    std::string timing = final_line ? fmt::format("{} total", format_duration(elapsed))
                                    : fmt::format("{} elapsed, ETA {}", format_duration(elapsed), format_duration(eta));
    if (tty_) {
        const int width = 24;
        int filled = static_cast<int>(frac * width);
        std::string bar(filled, '#');
        bar += std::string(width - filled, '.');
        std::fprintf(stderr, "\r\033[K%s [%s] %lld/%lld %s  %s%s", label_.c_str(), bar.c_str(),
                     static_cast<long long>(done_), static_cast<long long>(total_), timing.c_str(), detail_.c_str(),
                     final_line ? "\n" : "");
    } else {
        std::fprintf(stderr, "%s %lld/%lld (%.0f%%) %s  %s\n", label_.c_str(), static_cast<long long>(done_),
                     static_cast<long long>(total_), 100.0 * frac, timing.c_str(), detail_.c_str());
    }
    std::fflush(stderr);
}

}  // namespace sinklab
