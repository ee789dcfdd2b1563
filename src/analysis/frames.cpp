#include "analysis/frames.h"

#include <algorithm>

#include "analysis/results.h"
#include "analysis/stats.h"
#include "analysis/value_space.h"
#include "core/error.h"

namespace sinklab::analysis {

using nlohmann::json;

const char* frame_name(Frame frame) {
    switch (frame) {
        case Frame::centralized: return "centralized";
        case Frame::distributed: return "distributed";
        case Frame::bidirectional: return "bidirectional";
    }
    return "unknown";
}

namespace {

constexpr Frame all_frames[] = {Frame::centralized, Frame::distributed, Frame::bidirectional};

json fractions_json(const double (&f)[3]) {
    json out = json::object();
    for (Frame frame : all_frames) out[frame_name(frame)] = f[static_cast<int>(frame)];
    return out;
}

}  // namespace

FrameAccumulator::FrameAccumulator(int samples, const FrameOptions& options)
    : options_(options), samples_(samples), weight_(1.0 / samples) {
    SINKLAB_CHECK(samples > 0, "analysis", "classify_frames: no samples");
}

void FrameAccumulator::add(const AttentionSample& s) {
    validate_sample(s);
    if (num_layers_ == 0) {
        num_layers_ = s.num_layers();
        for (int l : select_layers(options_.layers, num_layers_))
            layers_.push_back(LayerFrame{l, true, Frame::distributed, {0.0, 0.0, 0.0}, 0.0, 0.0, 0.0, 0.0, 0.0});
    }
    SINKLAB_CHECK(s.num_layers() == num_layers_, "analysis", "classify_frames: samples have {} and {} layers",
                  num_layers_, s.num_layers());
    const double w = weight_;
    for (LayerFrame& lf : layers_) {
        const Eigen::MatrixXd& a = s.attention[lf.layer];
        const int T = static_cast<int>(a.rows());
        const bool causal = is_causal(a);
        const std::vector<int> ref = reference_tokens(a, options_.reference_threshold);
        const Eigen::VectorXd col = a.colwise().sum().transpose();
        const std::vector<double> cols(col.data(), col.data() + T);
        const double share = col(0) / T;
        const bool token0_only = ref.size() == 1 && ref[0] == 0;
        const bool dual_anchor = T >= 2 && ref.front() == 0 && ref.back() == T - 1;
        Frame frame = Frame::distributed;
        if (!causal && dual_anchor) frame = Frame::bidirectional;
        else if (token0_only && share > options_.centralized_share) frame = Frame::centralized;

        lf.causal = lf.causal && causal;
        lf.votes[static_cast<int>(frame)] += w;
        lf.reference_count += w * static_cast<double>(ref.size());
        lf.token0_only_fraction += w * (token0_only ? 1.0 : 0.0);
        lf.dual_anchor_fraction += w * (dual_anchor ? 1.0 : 0.0);
        lf.column0_share += w * share;
        lf.in_degree_gini += w * gini(cols);
    }
}

FrameResult FrameAccumulator::result() const {
    FrameResult result{samples_, true, Frame::distributed, {0.0, 0.0, 0.0}, layers_};
    for (LayerFrame& lf : result.layers) {
        // Plurality of the samples; a tie is not evidence of a single reference point.
        const double best = *std::max_element(std::begin(lf.votes), std::end(lf.votes));
        const int winners = static_cast<int>(std::count(std::begin(lf.votes), std::end(lf.votes), best));
        lf.frame = Frame::distributed;
        for (Frame frame : all_frames)
            if (lf.votes[static_cast<int>(frame)] == best && winners == 1) lf.frame = frame;
        result.causal = result.causal && lf.causal;
    }
    const double layers = static_cast<double>(result.layers.size());
    for (const LayerFrame& lf : result.layers) result.layer_fractions[static_cast<int>(lf.frame)] += 1.0 / layers;
    if (!result.causal && result.layer_fractions[static_cast<int>(Frame::bidirectional)] > 0.0)
        result.frame = Frame::bidirectional;
    else if (result.layer_fractions[static_cast<int>(Frame::centralized)] > options_.majority)
        result.frame = Frame::centralized;
    return result;
}

FrameResult classify_frames(const std::vector<AttentionSample>& samples, const FrameOptions& options) {
    SINKLAB_CHECK(!samples.empty(), "analysis", "classify_frames: no samples");
    FrameAccumulator frames(static_cast<int>(samples.size()), options);
    for (const AttentionSample& s : samples) frames.add(s);
    return frames.result();
}

json FrameResult::to_json() const {
    json out = {{"analysis", "frames"},
                {"variant", "corrected"},
                {"rule", "sinklab's operational rule, docs/analysis.md section 6 (inferred, not in the authors' code)"},
                {"samples", samples},
                {"causal", causal},
                {"frame", frame_name(frame)},
                {"layer_fractions", fractions_json(layer_fractions)},
                {"layers", json::array()}};
    for (const LayerFrame& l : layers)
        out["layers"].push_back({{"layer", l.layer},
                                 {"causal", l.causal},
                                 {"frame", frame_name(l.frame)},
                                 {"votes", fractions_json(l.votes)},
                                 {"reference_count", l.reference_count},
                                 {"token0_only_fraction", l.token0_only_fraction},
                                 {"dual_anchor_fraction", l.dual_anchor_fraction},
                                 {"column0_share", json_number(l.column0_share)},
                                 {"in_degree_gini", json_number(l.in_degree_gini)}});
    return out;
}

}  // namespace sinklab::analysis
