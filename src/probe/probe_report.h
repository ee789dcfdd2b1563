#pragma once
// A probe's numbers for people (a per-layer table) and for scripts (JSON, schema in docs/probe.md).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "probe/probe.h"

namespace sinklab {

inline constexpr const char* kProbeSchema = "sinklab.probe/1";

// Every number of `result` under the keys of docs/probe.md, with "definitions" naming the
// definition each key follows; the caller adds "parameters" (the run's settings).
nlohmann::json probe_result_json(const ProbeResult& result);

// Per layer: Sink_1, mean alpha_1 over heads, top |h| / median |h|, ||h_1|| / mean ||h_t||, entropy;
// then Sink_k for k = 1..K and the intervention, if any. Columns of metrics not computed are left out.
std::string probe_table(const ProbeResult& result);

// alpha_1 of uniform causal attention over T tokens, H_T / T (0.0741 at T = 64): the value every
// head would have if it spread its attention evenly over what it sees.
double uniform_alpha1(int T);

// A head with a first-token sink: its alpha_1 (mean over samples) above the Sink threshold eps.
struct SinkHead {
    int layer = 0, head = 0;
    double alpha = 0.0;
};
// Every head whose alpha_1 exceeds `eps`, by layer then head.
std::vector<SinkHead> sink_heads(const ProbeResult& result, double eps);

// One sentence computed from the sink scores, for summaries: the layers and heads with a sink and
// their alpha_1 against the uniform value (H_T/T over causal rows, 1/T bidirectional), or that no
// sink formed, with the largest alpha_1 and its ratio to the uniform value. Needs the sink metric.
std::string sink_finding(const ProbeResult& result, double eps);

}  // namespace sinklab
