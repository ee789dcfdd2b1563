#pragma once
// Progress on long work: a one-line bar with rate and ETA on a terminal (stderr), and plain
// periodic lines when stderr is not a terminal (logs, CI).
#include <chrono>
#include <cstdint>
#include <string>

namespace sinklab {

class Progress {
public:
    Progress(std::string label, int64_t total, bool enabled = true);
    ~Progress();
    // Advances to `done` units; `detail` is shown after the bar (e.g. "loss 2.31").
    void update(int64_t done, const std::string& detail = "");
    void finish(const std::string& detail = "");
    // Ends the line where the work stopped short of the total (e.g. "... diverged").
    void stop(const std::string& detail);
    double elapsed_seconds() const;

private:
    void draw(bool final_line);
    std::string label_;
    int64_t total_;
    int64_t done_ = 0;
    bool enabled_;
    bool tty_;
    bool finished_ = false;
    std::string detail_;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_;
};

std::string format_duration(double seconds);

}  // namespace sinklab
