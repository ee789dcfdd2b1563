#include "train/divergence.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"

namespace sinklab {

namespace {

double median(const std::deque<double>& values) {
    std::vector<double> sorted(values.begin(), values.end());
    std::sort(sorted.begin(), sorted.end());
    const size_t n = sorted.size();
    return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

}  // namespace

std::string DivergenceMonitor::diagnose(double loss, double grad_norm) const {
    if (!std::isfinite(loss)) return fmt::format("loss is {}", loss);
    if (!std::isfinite(grad_norm)) return fmt::format("gradient norm is {}", grad_norm);
    if (spike_factor_ <= 0 || losses_.empty()) return "";
    auto spike = [&](const char* what, double value, const std::deque<double>& history) -> std::string {
        const double typical = median(history);
        if (!(value > spike_factor_ * typical)) return "";
        return fmt::format("{} {:.4g} is more than spike-factor {:g} times the median {:.4g} of the last {} step{}",
                           what, value, spike_factor_, typical, history.size(), history.size() == 1 ? "" : "s");
    };
    std::string reason = spike("loss", loss, losses_);
    if (reason.empty()) reason = spike("gradient norm", grad_norm, grad_norms_);
    return reason;
}

void DivergenceMonitor::record(double loss, double grad_norm) {
    losses_.push_back(loss);
    grad_norms_.push_back(grad_norm);
    if (losses_.size() > kSpikeWindow) {
        losses_.pop_front();
        grad_norms_.pop_front();
    }
}

nlohmann::json DivergenceMonitor::to_json() const {
    return {{"losses", std::vector<double>(losses_.begin(), losses_.end())},
            {"grad_norms", std::vector<double>(grad_norms_.begin(), grad_norms_.end())}};
}

void DivergenceMonitor::restore(const nlohmann::json& history, const std::string& source) {
    losses_.clear();
    grad_norms_.clear();
    try {
        const auto losses = history.at("losses").get<std::vector<double>>();
        const auto grad_norms = history.at("grad_norms").get<std::vector<double>>();
        SINKLAB_CHECK(losses.size() == grad_norms.size() && losses.size() <= kSpikeWindow, "train",
                      "{}: the divergence history has {} losses and {} gradient norms (at most {} each, as many)",
                      source, losses.size(), grad_norms.size(), kSpikeWindow);
        for (size_t i = 0; i < losses.size(); ++i) record(losses[i], grad_norms[i]);
    } catch (const nlohmann::json::exception& e) {
        fail("train", "{}: unreadable divergence history: {}", source, e.what());
    }
}

}  // namespace sinklab
