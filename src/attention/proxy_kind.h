#pragma once
// How a statistic reads attention weights, shared by the kernels' taps (blockwise_attention.h) and
// by metrics/ (metrics/proxy.h holds the rule that says which design is read how; Gu et al. 2025's
// proxies, research/variants.md b1): none, the weights themselves; ratio, w / (sum w + 1e-8);
// abs_ratio, |w| / (sum |w| + 1e-8); the sums over each query row.
namespace sinklab {

enum class ProxyKind { none, ratio, abs_ratio };

inline constexpr double kProxyEps = 1e-8;  // Gu et al.'s epsilon of both proxies

}  // namespace sinklab
