#include "metrics/proxy.h"

namespace sinklab {

ProxyKind sink_metric_proxy(const AttentionSpec& spec) {
    // Gu et al. (lit_gpt/inference/model_attn_{sim,kernel}_infer.py): unnormalised sigmoid/elu
    // similarities -> ratio; identity kernels, normalised or not (weights of either sign) -> abs_ratio.
    if (spec.kind == AttentionKind::identity) return ProxyKind::abs_ratio;
    if (!spec.normalised) return ProxyKind::ratio;
    return ProxyKind::none;
}

double proxy_row_scale(ProxyKind proxy, const float* row, int n, double start) {
    if (proxy == ProxyKind::none) return 1.0;
    double sum = start;
    for (int j = 0; j < n; ++j) sum += proxy_read(proxy, row[j]);
    return 1.0 / (sum + kProxyEps);
}

}  // namespace sinklab
