#include "perturb/perturb_report.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace sinklab {

namespace {

nlohmann::json summary_json(const ChangeSummary& s) { return {{"mean", s.mean}, {"p90", s.p90}, {"count", s.count}}; }

// "0.0123", or "-" for a number that was not measured
std::string cell(double v, int width) {
    return std::isnan(v) ? fmt::format("{:>{}}", "-", width) : fmt::format("{:>{}.4f}", v, width);
}

struct Bucket {
    int from, to;
    const char* label;
};
constexpr Bucket kBuckets[] = {{1, 1, "d=1"}, {2, 4, "d=2-4"}, {5, 16, "d=5-16"}, {17, 1 << 30, "d=17+"}};

}  // namespace

nlohmann::json over_mixing_json(const OverMixingResult& r) {
    nlohmann::json residual = nlohmann::json::array(), heads_pooled = nlohmann::json::array();
    nlohmann::json heads = nlohmann::json::array();
    for (int l = 0; l < r.layers; ++l) {
        residual.push_back(summary_json(r.residual[l]));
        heads_pooled.push_back(summary_json(r.heads_pooled[l]));
        nlohmann::json layer = nlohmann::json::array();
        for (const ChangeSummary& s : r.head[l]) layer.push_back(summary_json(s));
        heads.push_back(layer);
    }
    return {{"layers", r.layers},
            {"heads", r.heads},
            {"distance_convention", r.distance_convention},
            {"seq_len", r.seq_len},
            {"windows", r.windows},
            {"perturbations", r.perturbations},
            {"residual", residual},
            {"head", heads},
            {"heads_pooled", heads_pooled},
            {"residual_by_distance", r.residual_by_distance},
            {"heads_by_distance", r.heads_by_distance},
            {"pairs_by_distance", r.pairs_by_distance},
            {"residual_by_position", r.residual_by_position},
            {"zero_norm_skipped", r.zero_norm_skipped},
            {"loss", r.loss.empty() ? nlohmann::json() : nlohmann::json(r.loss)},
            {"loss_value", r.loss_value},
            {"seconds", r.seconds}};
}

nlohmann::json over_mixing_definitions() {
    return {
        {"residual", "per layer l: mean and 90th percentile (linear interpolation at rank 0.9 (n-1)) over every "
                     "perturbation and every position t it is measured at (distance_convention) of "
                     "||h_l,t(x') - h_l,t(x)|| / ||h_l,t(x)||, h_l the output of block l (Barbero, Gu et al. 2025)"},
        {"distance_convention", "causal (decoders): the positions t after the last replaced token q, at distance "
                                "d = t - q; bidirectional (encoders, every query sees every key): every position "
                                "outside the replaced tokens p..q, both sides, at distance |d| = t - q after them and "
                                "p - t before them"},
        {"head", "per layer and attention head: the same for the head's output as the output projection reads it "
                 "(after the gate of gated designs)"},
        {"heads_pooled", "per layer: the same over every head's values"},
        {"residual_by_distance", "[layer][d-1]: mean residual change at distance d from the replaced tokens "
                                 "(distance_convention)"},
        {"heads_by_distance", "[layer][d-1]: mean head change at distance d, over heads too"},
        {"pairs_by_distance", "[d-1]: (perturbation, position) pairs at distance d"},
        {"residual_by_position", "[layer][t-1]: mean over perturbations of the residual change at position t of the "
                                 "input, every position (before the perturbed tokens it is 0 in a causal model)"},
        {"zero_norm_skipped", "(layer or head, position) pairs left out because the clean norm was 0"},
        {"loss", "the loss the clean windows are scored with under each condition: masked_lm (encoders: in each "
                 "window a seeded 15% of the text tokens, round(0.15 n) and at least 1, all become the mask token "
                 "and are the only targets; the model's [CLS] / [SEP] frame is never masked), null for decoders"},
        {"loss_value", "mean cross-entropy in nats of the loss over every target of every window, with the condition's "
                       "edit (the sink removed or not); null without a loss"},
    };
}

double mean_over_distances(const std::vector<double>& by_distance, const std::vector<long>& pairs, int from, int to) {
    double sum = 0.0;
    long count = 0;
    for (int d = from; d <= to && d <= static_cast<int>(by_distance.size()); ++d) {
        if (std::isnan(by_distance[d - 1])) continue;
        sum += by_distance[d - 1] * pairs[d - 1];
        count += pairs[d - 1];
    }
    return count ? sum / count : std::nan("");
}

std::string over_mixing_table(const std::vector<OverMixingRun>& runs) {
    size_t model_width = 5, condition_width = 4;
    for (const OverMixingRun& run : runs) {
        model_width = std::max(model_width, run.model.size());
        condition_width = std::max(condition_width, run.condition.size());
    }
    std::string out = fmt::format("{:<{}}  {:<{}}  layer  resid mean  resid p90  heads mean  heads p90", "model",
                                  model_width, "sink", condition_width);
    for (const Bucket& b : kBuckets) out += fmt::format("  {:>8}", b.label);
    out += "\n";
    for (const OverMixingRun& run : runs) {
        const OverMixingResult& r = run.result;
        for (int l = 0; l < r.layers; ++l) {
            out += fmt::format("{:<{}}  {:<{}}  {:>5}  {}  {}  {}  {}", l == 0 ? run.model : "", model_width,
                               l == 0 ? run.condition : "", condition_width, l, cell(r.residual[l].mean, 10),
                               cell(r.residual[l].p90, 9), cell(r.heads_pooled[l].mean, 10),
                               cell(r.heads_pooled[l].p90, 9));
            for (const Bucket& b : kBuckets)
                out += "  " + cell(mean_over_distances(r.residual_by_distance[l], r.pairs_by_distance, b.from, b.to), 8);
            out += "\n";
        }
    }
    return out;
}

}  // namespace sinklab
