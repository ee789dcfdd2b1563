#pragma once
// Deterministic parallel sums: OpenMP's reduction clause combines thread partials in arrival
// order, which changes the last bits from run to run; exact resume needs the same bits.
#include <vector>

#include <omp.h>

namespace sinklab {

// Sum over i in [0, n) of term(i), in double, with a fixed static partition and a fixed combination order.
template <typename Term>
double deterministic_sum(long n, Term term) {
    const int threads = omp_get_max_threads();
    std::vector<double> partial(static_cast<size_t>(threads) * 8, 0.0);  // padded against false sharing
    #pragma omp parallel num_threads(threads)
    {
        const int tid = omp_get_thread_num();
        const int used = omp_get_num_threads();
        const long begin = n * tid / used, end = n * (tid + 1) / used;
        // Eight running sums, term i into sum (i - begin) % 8, added in lane order: the same bits
        // whatever the buffer's alignment, and one vector add per eight terms instead of a chain
        // of scalar adds.
        constexpr int kLanes = 8;
        double lane[kLanes] = {};
        long i = begin;
        for (; i + kLanes <= end; i += kLanes)
            for (int l = 0; l < kLanes; ++l) lane[l] += term(i + l);
        for (int l = 0; i < end; ++i, ++l) lane[l] += term(i);
        double s = 0.0;
        for (int l = 0; l < kLanes; ++l) s += lane[l];
        partial[static_cast<size_t>(tid) * 8] = s;
    }
    double total = 0.0;
    for (int t = 0; t < threads; ++t) total += partial[static_cast<size_t>(t) * 8];
    return total;
}

}  // namespace sinklab
