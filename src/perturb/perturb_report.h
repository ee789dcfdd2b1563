#pragma once
// The over-mixing test's numbers for people (one table for every model and sink condition) and for
// scripts (JSON, schema in docs/perturb.md).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "perturb/over_mixing.h"

namespace sinklab {

inline constexpr const char* kPerturbSchema = "sinklab.perturb/1";

// One run of the test: a model under one sink condition ("with sink", or a --without-sink mode).
struct OverMixingRun {
    std::string model;      // as the table names it
    std::string condition;  // "with sink", "drop-bos", "mask-first:1", "mask-slot"
    OverMixingResult result;
};

// Every number of `result` under the keys of docs/perturb.md (NaN, where nothing was measured, as null).
nlohmann::json over_mixing_json(const OverMixingResult& result);

// What each key means, in words, for the JSON's "definitions".
nlohmann::json over_mixing_definitions();

// Per model, condition and layer: the residual stream's mean and p90 change, the heads' (pooled),
// and the mean residual change at distances 1, 2-4, 5-16 and 17+ from the perturbed token.
std::string over_mixing_table(const std::vector<OverMixingRun>& runs);

// The distance buckets of the table: the pair-weighted mean of by_distance[d - 1] for d in
// [from, to] (NaN when no pair is that far).
double mean_over_distances(const std::vector<double>& by_distance, const std::vector<long>& pairs, int from, int to);

}  // namespace sinklab
