#include "probe/probe_metrics.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"
#include "core/text.h"

namespace sinklab {

const std::vector<Metric>& all_metrics() {
    static const std::vector<Metric> metrics = {Metric::sink,        Metric::entropy,  Metric::massive,
                                                Metric::hidden_norms, Metric::value_drain, Metric::geometry,
                                                Metric::no_op};
    return metrics;
}

std::string metric_name(Metric metric) {
    switch (metric) {
        case Metric::sink: return "sink";
        case Metric::entropy: return "entropy";
        case Metric::massive: return "massive";
        case Metric::hidden_norms: return "hidden_norms";
        case Metric::value_drain: return "value_drain";
        case Metric::geometry: return "geometry";
        case Metric::no_op: return "no_op";
    }
    return "";
}

std::vector<Metric> parse_metrics(const std::string& list) {
    if (list == "all") return all_metrics();
    std::vector<Metric> metrics;
    for (const std::string& name : split_list(list)) {
        bool found = false;
        for (Metric m : all_metrics())
            if (metric_name(m) == name) {
                if (std::find(metrics.begin(), metrics.end(), m) == metrics.end()) metrics.push_back(m);
                found = true;
            }
        if (!found) {
            std::string known;
            for (Metric m : all_metrics()) known += (known.empty() ? "" : ", ") + metric_name(m);
            fail("probe", "--metrics: unknown metric '{}' (known: all, {})", name, known);
        }
    }
    return metrics;
}

}  // namespace sinklab
