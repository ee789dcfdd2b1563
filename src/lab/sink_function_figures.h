#pragma once
// The report's figures of what sinks are for (issue 20): the over-mixing test per model (change
// against layer with and without the sink; layer x distance heatmap) and the no-op reading (a
// scatter of each head's share of attention on the sink against its output norm). Data first: each
// figure is a list of plain records (one JSON object per point, the shape a Vega-Lite spec takes as
// its "values"), written to report.json; the functions below draw the same records on the page.
#include <string>

#include <nlohmann/json.hpp>

#include "lab/perturb_models.h"
#include "probe/probe.h"
#include "report/html.h"

namespace sinklab {

// {"sink", "layer", "mean", "p90", "heads_mean"}: one record per condition and layer.
nlohmann::json over_mixing_layer_records(const ModelOverMixing& m);
// {"sink", "layer", "distance", "mean"}: the mean residual change per condition, layer and distance.
nlohmann::json over_mixing_distance_records(const ModelOverMixing& m);
// {"layer", "head", "sink_share", "output_ratio"}: one record per head (probe metric no_op).
nlohmann::json no_op_records(const ProbeResult& r);

// The over-mixing figures of one model: the mean residual change per layer for each condition (grouped
// bars, the model as it is first) and one layer x distance heatmap per condition, all on one colour range.
void add_over_mixing_figures(ReportPage& page, const ModelOverMixing& m);
// The no-op scatter of one model (needs the no_op metric).
void add_no_op_figure(ReportPage& page, const ProbeResult& r, const std::string& input);

}  // namespace sinklab
