#pragma once
// The metrics a probe can compute, by the names `--metrics` takes. Each is an accumulator of
// metrics/ (DESIGN.md section 4, research/variants.md b1-b3) fed one layer's tap of one batch at a
// time, so that nothing of size T x T (or L x T x C) is kept.
#include <string>
#include <vector>

namespace sinklab {

enum class Metric { sink, entropy, massive, hidden_norms, value_drain, geometry, no_op };
const std::vector<Metric>& all_metrics();
std::string metric_name(Metric metric);
// "all" or a comma-separated list of names; throws for an unknown name, listing the known ones.
std::vector<Metric> parse_metrics(const std::string& list);

}  // namespace sinklab
