#include "ops/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "ops/matmul.h"

namespace sinklab {

namespace {

// Tokens an expert processes per pass: bounds the scratch (rows x (2 C + up_width + F) floats)
// whatever the batch; a larger batch decodes the expert's matrices once per pass.
constexpr int kPassRows = 1024;

}  // namespace

void moe_forward(const MoeOutputs& out, const float* x, const MoeWeights& w, const MoeDims& d,
                 const MoeActivation& activation) {
    SINKLAB_ASSERT(d.K >= 1 && d.K <= d.E && w.up->count() == d.E && w.down->count() == d.E);
    SINKLAB_ASSERT(w.up->rows() == d.up_width && w.up->cols() == d.C && w.down->rows() == d.C && w.down->cols() == d.F);
    const int N = d.N, C = d.C, E = d.E, K = d.K;
    matmul_forward(out.router_logits, x, w.router, w.router_bias, N, C, E);

    // routing: the top K logits of each token, softmax over them
    std::fill(out.routing, out.routing + static_cast<size_t>(N) * E, 0.0f);
    std::vector<int> chosen(static_cast<size_t>(N) * K);  // (N, K) expert ids
    #pragma omp parallel
    {
        std::vector<int> order(E);
        #pragma omp for schedule(static)
        for (int t = 0; t < N; ++t) {
            const float* logits = out.router_logits + static_cast<size_t>(t) * E;
            std::iota(order.begin(), order.end(), 0);
            std::partial_sort(order.begin(), order.begin() + K, order.end(), [&](int a, int b) {
                return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
            });
            const float top = logits[order[0]];
            double sum = 0.0;
            for (int k = 0; k < K; ++k) sum += std::exp(static_cast<double>(logits[order[k]]) - top);
            float* routing = out.routing + static_cast<size_t>(t) * E;
            for (int k = 0; k < K; ++k) {
                routing[order[k]] = static_cast<float>(std::exp(static_cast<double>(logits[order[k]]) - top) / sum);
                chosen[static_cast<size_t>(t) * K + k] = order[k];
            }
        }
    }

    // Each expert over the tokens that chose it: gather, up, activation, down, then add its weighted
    // output to theirs. Experts go one after another, so every token sums its experts in the same
    // order (by expert index) whatever the threads do.
    std::fill(out.out, out.out + static_cast<size_t>(N) * C, 0.0f);
    const int rows_max = std::min(N, kPassRows);
    std::vector<float> gathered(static_cast<size_t>(rows_max) * C), pre(static_cast<size_t>(rows_max) * d.up_width),
        act(static_cast<size_t>(rows_max) * d.F), expert_out(static_cast<size_t>(rows_max) * C);
    std::vector<std::vector<int>> tokens_of(E);  // the tokens that chose each expert, in order
    for (int t = 0; t < N; ++t)
        for (int k = 0; k < K; ++k) tokens_of[chosen[static_cast<size_t>(t) * K + k]].push_back(t);
    for (int e = 0; e < E; ++e) {
        const std::vector<int>& tokens = tokens_of[e];
        for (size_t first = 0; first < tokens.size(); first += kPassRows) {
            const int n = static_cast<int>(std::min(tokens.size() - first, static_cast<size_t>(kPassRows)));
            const int* ids = tokens.data() + first;
            #pragma omp parallel for schedule(static)
            for (int i = 0; i < n; ++i)
                std::memcpy(gathered.data() + static_cast<size_t>(i) * C, x + static_cast<size_t>(ids[i]) * C,
                            sizeof(float) * C);
            mxfp4_matmul(pre.data(), gathered.data(), n, *w.up, e, w.up_bias + static_cast<size_t>(e) * d.up_width);
            activation(act.data(), pre.data(), n);
            mxfp4_matmul(expert_out.data(), act.data(), n, *w.down, e, w.down_bias + static_cast<size_t>(e) * C);
            #pragma omp parallel for schedule(static)
            for (int i = 0; i < n; ++i) {
                const float weight = out.routing[static_cast<size_t>(ids[i]) * E + e];
                const float* y = expert_out.data() + static_cast<size_t>(i) * C;
                float* o = out.out + static_cast<size_t>(ids[i]) * C;
                #pragma omp simd
                for (int c = 0; c < C; ++c) o[c] += weight * y[c];
            }
        }
    }
}

}  // namespace sinklab
