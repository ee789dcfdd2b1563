#pragma once
// Descriptive statistics and tests shared by the analyses. Conventions follow numpy/scipy, which the
// reference notebooks use: np.std is the population deviation (ddof = 0), np.percentile interpolates
// linearly, scipy's p-values are two-sided.
#include <span>
#include <vector>

namespace sinklab::analysis {

double mean(std::span<const double> x);
double variance(std::span<const double> x, int ddof = 0);
double stddev(std::span<const double> x, int ddof = 0);
double median(std::span<const double> x);

// numpy.percentile(x, q) with the default 'linear' method, q in [0, 100].
double percentile_linear(std::span<const double> x, double q);

// np.linspace(0, T - 1, n, dtype=int): n evenly spaced positions of 0..T-1 (truncated), or all of
// 0..T-1 when T <= n. The notebooks downsample tokens with it.
std::vector<int> linspace_indices(int T, int n);

// Gini coefficient as in Notebooks/laplacian.ipynb: with x sorted ascending,
// 2 sum_k k x_(k) / (n sum x) - (n + 1) / n; 0 when the sum is 0.
double gini(std::span<const double> x);

// Ranks 1..n, ties get their average rank (scipy.stats.rankdata 'average').
std::vector<double> average_ranks(std::span<const double> x);

// r and its two-sided p-value (t-test with n - 2 degrees of freedom, as scipy.stats.pearsonr).
// Both are NaN when n < 2 or an input is constant; p is 1 when n == 2 (scipy's convention).
struct Correlation {
    double r;
    double p;
};
Correlation pearson(std::span<const double> x, std::span<const double> y);
Correlation spearman(std::span<const double> x, std::span<const double> y);

struct TTest {
    double t;
    double df;
    double p;  // two-sided
};
// scipy.stats.ttest_ind(a, b, equal_var=False). NaN when a group has fewer than 2 values or both
// variances are 0.
TTest welch_t_test(std::span<const double> a, std::span<const double> b);
// scipy.stats.ttest_1samp(x, mu).
TTest one_sample_t_test(std::span<const double> x, double mu);

// Two-sided p-value of a Student t statistic.
double student_t_two_sided_p(double t, double df);

}  // namespace sinklab::analysis
