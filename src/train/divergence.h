#pragma once
// When a training run has diverged. A step diverges when its loss or its gradient norm (before
// clipping) is not finite, or spikes: is more than `spike_factor` times the median of the same
// quantity over the last kSpikeWindow healthy steps (from the second step on; a factor of 0 turns
// spike detection off). The median ignores the run's ordinary ups and downs; a loss of 7.1e7 after
// losses near 5, or a gradient norm of 6.9e22 after norms near 1, is far beyond any factor.
#include <deque>
#include <string>

#include <nlohmann/json.hpp>

namespace sinklab {

class DivergenceMonitor {
public:
    static constexpr size_t kSpikeWindow = 50;

    explicit DivergenceMonitor(double spike_factor = 0.0) : spike_factor_(spike_factor) {}

    // Why a step with this loss and gradient norm diverged, or "" when it is healthy.
    std::string diagnose(double loss, double grad_norm) const;
    // A healthy step joins the history.
    void record(double loss, double grad_norm);

    // The history, saved in checkpoints so that a resumed run judges its steps as the
    // uninterrupted run would.
    nlohmann::json to_json() const;
    void restore(const nlohmann::json& history, const std::string& source);

private:
    double spike_factor_;
    std::deque<double> losses_, grad_norms_;  // the last kSpikeWindow healthy steps, oldest first
};

}  // namespace sinklab
