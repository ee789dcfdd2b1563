#include "analysis/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <boost/math/distributions/students_t.hpp>

#include "core/error.h"

namespace sinklab::analysis {

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

std::vector<double> sorted_copy(std::span<const double> x) {
    std::vector<double> s(x.begin(), x.end());
    std::sort(s.begin(), s.end());
    return s;
}

}  // namespace

double mean(std::span<const double> x) {
    if (x.empty()) return nan;
    return std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size());
}

double variance(std::span<const double> x, int ddof) {
    const auto n = static_cast<double>(x.size());
    if (n - ddof <= 0) return nan;
    const double m = mean(x);
    double ss = 0.0;
    for (double v : x) ss += (v - m) * (v - m);
    return ss / (n - ddof);
}

double stddev(std::span<const double> x, int ddof) { return std::sqrt(variance(x, ddof)); }

double median(std::span<const double> x) { return percentile_linear(x, 50.0); }

double percentile_linear(std::span<const double> x, double q) {
    SINKLAB_CHECK(q >= 0.0 && q <= 100.0, "analysis", "percentile {} is outside [0, 100]", q);
    if (x.empty()) return nan;
    const std::vector<double> s = sorted_copy(x);
    // numpy: virtual index (n - 1) q / 100, linear interpolation between its neighbours.
    const double index = (static_cast<double>(s.size()) - 1.0) * q / 100.0;
    const auto lo = static_cast<size_t>(std::floor(index));
    const size_t hi = std::min(lo + 1, s.size() - 1);
    const double frac = index - static_cast<double>(lo);
    return s[lo] + (s[hi] - s[lo]) * frac;
}

double gini(std::span<const double> x) {
    const std::vector<double> s = sorted_copy(x);
    const double total = std::accumulate(s.begin(), s.end(), 0.0);
    if (s.empty() || total <= 0.0) return 0.0;
    const auto n = static_cast<double>(s.size());
    double weighted = 0.0;
    for (size_t k = 0; k < s.size(); ++k) weighted += static_cast<double>(k + 1) * s[k];
    return 2.0 * weighted / (n * total) - (n + 1.0) / n;
}

std::vector<double> average_ranks(std::span<const double> x) {
    std::vector<size_t> order(x.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
    std::vector<double> ranks(x.size());
    for (size_t i = 0; i < order.size();) {
        size_t j = i;
        while (j + 1 < order.size() && x[order[j + 1]] == x[order[i]]) ++j;
        const double rank = 0.5 * static_cast<double>(i + j) + 1.0;  // mean of ranks i+1 .. j+1
        for (size_t m = i; m <= j; ++m) ranks[order[m]] = rank;
        i = j + 1;
    }
    return ranks;
}

double student_t_two_sided_p(double t, double df) {
    if (std::isnan(t) || std::isnan(df) || df <= 0.0) return nan;
    if (std::isinf(t)) return 0.0;
    const boost::math::students_t dist(df);
    return 2.0 * boost::math::cdf(boost::math::complement(dist, std::fabs(t)));
}

Correlation pearson(std::span<const double> x, std::span<const double> y) {
    SINKLAB_CHECK(x.size() == y.size(), "analysis", "pearson: {} x values but {} y values", x.size(),
                  y.size());
    const size_t n = x.size();
    if (n < 2) return {nan, nan};
    const double mx = mean(x), my = mean(y);
    double sxy = 0.0, sxx = 0.0, syy = 0.0;
    for (size_t i = 0; i < n; ++i) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    if (sxx == 0.0 || syy == 0.0) return {nan, nan};
    const double r = std::clamp(sxy / std::sqrt(sxx * syy), -1.0, 1.0);
    if (n == 2) return {r, 1.0};
    if (std::fabs(r) == 1.0) return {r, 0.0};
    const double df = static_cast<double>(n) - 2.0;
    const double t = r * std::sqrt(df / (1.0 - r * r));
    return {r, student_t_two_sided_p(t, df)};
}

Correlation spearman(std::span<const double> x, std::span<const double> y) {
    const std::vector<double> rx = average_ranks(x), ry = average_ranks(y);
    return pearson(rx, ry);
}

TTest welch_t_test(std::span<const double> a, std::span<const double> b) {
    if (a.size() < 2 || b.size() < 2) return {nan, nan, nan};
    const double va = variance(a, 1) / static_cast<double>(a.size());
    const double vb = variance(b, 1) / static_cast<double>(b.size());
    if (va + vb == 0.0) return {nan, nan, nan};
    const double t = (mean(a) - mean(b)) / std::sqrt(va + vb);
    const double df = (va + vb) * (va + vb) /
                      (va * va / static_cast<double>(a.size() - 1) + vb * vb / static_cast<double>(b.size() - 1));
    return {t, df, student_t_two_sided_p(t, df)};
}

TTest one_sample_t_test(std::span<const double> x, double mu) {
    if (x.size() < 2) return {nan, nan, nan};
    const double se = stddev(x, 1) / std::sqrt(static_cast<double>(x.size()));
    const double df = static_cast<double>(x.size()) - 1.0;
    if (se == 0.0) return {nan, df, nan};
    const double t = (mean(x) - mu) / se;
    return {t, df, student_t_two_sided_p(t, df)};
}

std::vector<int> linspace_indices(int T, int n) {
    SINKLAB_CHECK(T >= 1 && n >= 1, "analysis", "linspace_indices needs T >= 1 and n >= 1, got T={} n={}", T, n);
    std::vector<int> idx;
    if (T <= n) {
        for (int i = 0; i < T; ++i) idx.push_back(i);
        return idx;
    }
    if (n == 1) return {0};
    // numpy: y = arange(n) * ((T - 1) / (n - 1)), y[-1] = T - 1, then truncation to int.
    const double step = static_cast<double>(T - 1) / static_cast<double>(n - 1);
    for (int i = 0; i < n - 1; ++i) idx.push_back(static_cast<int>(i * step));
    idx.push_back(T - 1);
    return idx;
}

}  // namespace sinklab::analysis
