#include "analysis/results.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>

#include "analysis/stats.h"
#include "core/error.h"

namespace sinklab::analysis {

using nlohmann::json;

json json_number(double value) { return std::isfinite(value) ? json(value) : json(nullptr); }

json json_numbers(std::span<const double> values) {
    json out = json::array();
    for (double v : values) out.push_back(json_number(v));
    return out;
}

namespace {

bool is_key_field(const std::string& key) {
    static const char* const keys[] = {"layer", "head", "tau", "k", "level", "percentile", "r", "variant", "position"};
    return std::any_of(std::begin(keys), std::end(keys), [&](const char* k) { return key == k; });
}

json summarize_numbers(const std::vector<double>& values) {
    return {{"mean", json_number(mean(values))}, {"std", json_number(stddev(values))}, {"n", values.size()}};
}

// Per-sample detail with no meaningful mean: persistence diagrams and lists of token positions.
bool is_sample_only(const std::string& key) {
    static const char* const keys[] = {"diagrams", "reference_tokens", "sink_indices", "top_token", "outlier_eigenvalues"};
    return std::any_of(std::begin(keys), std::end(keys), [&](const char* k) { return key == k; });
}

std::optional<json> merge(const std::vector<const json*>& values);

std::optional<json> merge_objects(const std::vector<const json*>& values) {
    std::vector<std::string> keys;  // in order of first appearance
    for (const json* v : values)
        for (auto it = v->begin(); it != v->end(); ++it)
            if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) keys.push_back(it.key());
    json out = json::object();
    for (const std::string& key : keys) {
        if (is_sample_only(key)) continue;
        std::vector<const json*> present;
        for (const json* v : values) {
            auto it = v->find(key);
            if (it != v->end() && !it->is_null()) present.push_back(&*it);
        }
        if (present.empty()) continue;
        const bool agree = std::all_of(present.begin(), present.end(), [&](const json* p) { return *p == *present[0]; });
        if (is_key_field(key) && agree) {
            out[key] = *present[0];
            continue;
        }
        if (std::optional<json> merged = merge(present)) out[key] = std::move(*merged);
    }
    return out;
}

std::optional<json> merge_arrays(const std::vector<const json*>& values) {
    const size_t length = values[0]->size();
    for (const json* v : values)
        if (v->size() != length) return std::nullopt;
    const bool numeric = std::all_of(values.begin(), values.end(), [](const json* v) {
        return std::all_of(v->begin(), v->end(), [](const json& e) { return e.is_null() || (e.is_number() && !e.is_boolean()); });
    });
    if (numeric) {
        json means = json::array(), stds = json::array();
        for (size_t i = 0; i < length; ++i) {
            std::vector<double> column;
            for (const json* v : values)
                if (!(*v)[i].is_null()) column.push_back((*v)[i].get<double>());
            means.push_back(json_number(mean(column)));
            stds.push_back(json_number(stddev(column)));
        }
        return json{{"mean", means}, {"std", stds}, {"n", values.size()}};
    }
    json out = json::array();
    for (size_t i = 0; i < length; ++i) {
        std::vector<const json*> column;
        for (const json* v : values)
            if (!(*v)[i].is_null()) column.push_back(&(*v)[i]);
        std::optional<json> merged = column.empty() ? std::nullopt : merge(column);
        out.push_back(merged ? std::move(*merged) : json(nullptr));
    }
    return out;
}

std::optional<json> merge(const std::vector<const json*>& values) {
    const json& first = *values[0];
    const auto same_type = [&](auto pred) { return std::all_of(values.begin(), values.end(), pred); };
    if (same_type([](const json* v) { return v->is_boolean(); })) {
        double true_count = 0.0;
        for (const json* v : values) true_count += v->get<bool>() ? 1.0 : 0.0;
        return json{{"fraction", true_count / static_cast<double>(values.size())}, {"n", values.size()}};
    }
    if (same_type([](const json* v) { return v->is_number(); })) {
        std::vector<double> numbers;
        for (const json* v : values) numbers.push_back(v->get<double>());
        return summarize_numbers(numbers);
    }
    if (same_type([](const json* v) { return v->is_string(); })) {
        if (same_type([&](const json* v) { return *v == first; })) return first;
        return std::nullopt;
    }
    if (same_type([](const json* v) { return v->is_object(); })) return merge_objects(values);
    if (same_type([](const json* v) { return v->is_array(); })) return merge_arrays(values);
    return std::nullopt;
}

}  // namespace

json aggregate_layers(const std::vector<json>& samples) {
    SINKLAB_CHECK(!samples.empty(), "analysis", "aggregate_layers: no samples to aggregate");
    std::map<int, std::vector<const json*>> by_layer;
    for (const json& sample : samples) {
        SINKLAB_CHECK(sample.contains("layers") && sample["layers"].is_array(), "analysis",
                      "aggregate_layers: a sample result has no \"layers\" array (pass the analyses' to_json())");
        for (const json& layer : sample["layers"]) by_layer[layer.at("layer").get<int>()].push_back(&layer);
    }
    json out = {{"samples", samples.size()}, {"layers", json::array()}};
    if (samples[0].contains("analysis")) out["analysis"] = samples[0]["analysis"];
    for (const auto& [layer, entries] : by_layer) {
        std::optional<json> merged = merge(entries);
        json entry = merged ? std::move(*merged) : json::object();
        entry["layer"] = layer;
        out["layers"].push_back(std::move(entry));
    }
    return out;
}

}  // namespace sinklab::analysis
