#pragma once
// How sink metrics read a design's weights (research/variants.md b1; Gu et al. 2025's proxies for
// the designs marked * in their paper), applied per query row over its token columns and its slot:
// none: the weights themselves; ratio: w / (sum w + 1e-8); abs_ratio: |w| / (sum |w| + 1e-8).
#include <cmath>

#include "attention/attention_spec.h"
#include "attention/proxy_kind.h"

namespace sinklab {

// The proxy the sink metrics use for a design: unnormalised similarities (sigmoid, elu1) -> ratio;
// identity kernels, normalised or not (weights of either sign) -> abs_ratio; the rest -> none.
ProxyKind sink_metric_proxy(const AttentionSpec& spec);

// A weight as the proxy reads it, before its row is rescaled: |w| for abs_ratio, w otherwise.
inline double proxy_read(ProxyKind proxy, float w) {
    return proxy == ProxyKind::abs_ratio ? std::abs(static_cast<double>(w)) : w;
}

// The scale of one query row under the proxy: 1 / (start + sum_j read(row[j]) + 1e-8), summed in
// double in column order (start: the slot's read weight, or 0); 1 for ProxyKind::none.
double proxy_row_scale(ProxyKind proxy, const float* row, int n, double start = 0.0);

}  // namespace sinklab
