#pragma once
// JSON conventions shared by the analysis results, and their aggregation over samples.
//
// Every result's to_json() has the shape {"analysis": name, "layers": [{"layer": l, ...}, ...]};
// quantities that reproduce the authors' code sit in an object with "variant": "faithful", the
// recommended ones in an object with "variant": "corrected". Undefined numbers (NaN, +-inf: a
// spectral gap over a zero eigenvalue, a correlation of a constant) are written as null.
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

namespace sinklab::analysis {

nlohmann::json json_number(double value);                   // null when not finite
nlohmann::json json_numbers(std::span<const double> values);  // element-wise json_number

// Per-layer aggregation of per-sample results (each a to_json() of the same analysis): layers are
// matched by their "layer" value and every number becomes {"mean", "std", "n"} over the samples
// that define it (std is numpy's population std; nulls are skipped, which drops the infinities
// as the notebooks do). Booleans become {"fraction", "n"}. Arrays of equal length aggregate
// element-wise (numbers into {"mean": [...], "std": [...], "n"}, objects recursively); arrays whose
// length differs between samples (per-token vectors of samples of different T) are left out.
// Strings and the key fields "layer", "head", "tau", "k", "level", "percentile", "r", "variant"
// are kept when every sample agrees. Per-sample detail without a meaningful mean is dropped:
// "diagrams", "reference_tokens", "sink_indices", "top_token", "outlier_eigenvalues".
nlohmann::json aggregate_layers(const std::vector<nlohmann::json>& samples);

}  // namespace sinklab::analysis
