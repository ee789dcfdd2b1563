#pragma once
// A probe's numbers for people (a per-layer table) and for scripts (JSON, schema in docs/probe.md).
#include <string>

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

}  // namespace sinklab
