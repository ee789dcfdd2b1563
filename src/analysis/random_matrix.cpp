#include "analysis/random_matrix.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>

#include "analysis/results.h"
#include "analysis/stats.h"
#include "core/error.h"

namespace sinklab::analysis {

using nlohmann::json;

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

double binomial(int n, int k) { return std::exp(std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0)); }

std::vector<double> descending(std::vector<double> v) {
    std::sort(v.begin(), v.end(), std::greater<>());
    return v;
}

// |eigenvalues| of A, descending. A causal A is lower-triangular: its eigenvalues are its diagonal.
std::vector<double> eigenvalue_magnitudes(const Eigen::MatrixXd& a) {
    std::vector<double> mags;
    if (is_causal(a)) {
        for (Eigen::Index i = 0; i < a.rows(); ++i) mags.push_back(std::fabs(a(i, i)));
    } else {
        const Eigen::EigenSolver<Eigen::MatrixXd> es(a, /*computeEigenvectors=*/false);
        SINKLAB_ASSERT(es.info() == Eigen::Success);
        for (Eigen::Index i = 0; i < es.eigenvalues().size(); ++i) mags.push_back(std::abs(es.eigenvalues()(i)));
    }
    return descending(std::move(mags));
}

std::vector<double> singular_values(const Eigen::MatrixXd& a) {
    const Eigen::BDCSVD<Eigen::MatrixXd> svd(a);  // singular values only
    const Eigen::VectorXd& s = svd.singularValues();
    return std::vector<double>(s.data(), s.data() + s.size());  // descending
}

}  // namespace

double MarchenkoPastur::lower_edge() const { return sigma2 * (1.0 - std::sqrt(gamma)) * (1.0 - std::sqrt(gamma)); }
double MarchenkoPastur::upper_edge() const { return sigma2 * (1.0 + std::sqrt(gamma)) * (1.0 + std::sqrt(gamma)); }

double MarchenkoPastur::density(double x) const {
    const double a = lower_edge(), b = upper_edge();
    if (x < a || x > b || x <= 0.0) return 0.0;
    return std::sqrt((b - x) * (x - a)) / (2.0 * std::numbers::pi * gamma * sigma2 * x);
}

double MarchenkoPastur::cdf(double x) const {
    SINKLAB_CHECK(gamma > 0.0 && gamma <= 1.0 && sigma2 > 0.0, "analysis",
                  "Marchenko-Pastur needs 0 < gamma <= 1 and sigma2 > 0, got gamma={} sigma2={}", gamma, sigma2);
    if (x <= lower_edge()) return 0.0;
    if (x >= upper_edge()) return 1.0;
    // With y = x / sigma2 = m - h cos(theta), m = 1 + gamma, h = 2 sqrt(gamma), the density becomes
    // [m + h cos t - (1 - gamma)^2 / (m - h cos t)] dt / (2 pi gamma), whose integral from 0 is
    // [m theta + h sin theta - 2 (1 - gamma) atan(kappa tan(theta / 2))] / (2 pi gamma),
    // kappa = (1 + sqrt(gamma)) / (1 - sqrt(gamma)). The last term vanishes at gamma = 1.
    const double m = 1.0 + gamma, h = 2.0 * std::sqrt(gamma);
    const double theta = std::acos(std::clamp((m - x / sigma2) / h, -1.0, 1.0));
    double value = m * theta + h * std::sin(theta);
    if (gamma < 1.0) {
        const double kappa = (1.0 + std::sqrt(gamma)) / (1.0 - std::sqrt(gamma));
        value -= 2.0 * (1.0 - gamma) * std::atan(kappa * std::tan(0.5 * theta));
    }
    return std::clamp(value / (2.0 * std::numbers::pi * gamma), 0.0, 1.0);
}

double MarchenkoPastur::moment(int k) const {
    SINKLAB_CHECK(k >= 1, "analysis", "Marchenko-Pastur moment of order {} (need k >= 1)", k);
    double sum = 0.0;
    for (int r = 0; r < k; ++r) {
        const double narayana = binomial(k, r + 1) * binomial(k, r) / k;
        sum += narayana * std::pow(gamma, r);
    }
    return std::pow(sigma2, k) * sum;
}

MpComparison compare_with_marchenko_pastur(std::span<const double> eigenvalues, const MarchenkoPastur& law) {
    SINKLAB_CHECK(!eigenvalues.empty(), "analysis", "compare_with_marchenko_pastur: no eigenvalues");
    std::vector<double> ev(eigenvalues.begin(), eigenvalues.end());
    std::sort(ev.begin(), ev.end());
    const double n = static_cast<double>(ev.size());
    MpComparison c;
    c.ks_distance = 0.0;
    for (size_t i = 0; i < ev.size(); ++i) {
        const double f = law.cdf(ev[i]);
        c.ks_distance = std::max({c.ks_distance, (i + 1) / n - f, f - i / n});
    }
    for (int k = 1; k <= 4; ++k) {
        double s = 0.0;
        for (double v : ev) s += std::pow(v, k);
        c.moments.push_back(s / n);
        c.mp_moments.push_back(law.moment(k));
    }
    c.min_eigenvalue = ev.front();
    c.max_eigenvalue = ev.back();
    for (auto it = ev.rbegin(); it != ev.rend() && *it > law.upper_edge(); ++it) c.outliers.push_back(*it);
    return c;
}

double faithful_mp_kl(std::span<const double> values, double gamma, int bins) {
    if (values.size() < 2) return nan;
    SINKLAB_CHECK(bins >= 1, "analysis", "faithful_mp_kl: {} bins", bins);
    const double m = mean(values);
    std::vector<double> x;
    for (double v : values) x.push_back(v / m);

    // np.histogram(x, bins, density=True) with its equal-width binning.
    double first = *std::min_element(x.begin(), x.end()), last = *std::max_element(x.begin(), x.end());
    if (first == last) {  // numpy widens an empty range by 0.5 on each side
        first -= 0.5;
        last += 0.5;
    }
    std::vector<double> edges(bins + 1);
    const double step = (last - first) / bins;
    for (int i = 0; i < bins; ++i) edges[i] = i * step + first;
    edges[bins] = last;
    const double norm = bins / (last - first);
    std::vector<double> counts(bins, 0.0);
    for (double v : x) {
        auto idx = static_cast<long>((v - first) * norm);
        if (idx == bins) --idx;
        if (v < edges[idx]) --idx;
        else if (v >= edges[idx + 1] && idx != bins - 1) ++idx;
        counts[idx] += 1.0;
    }
    std::vector<double> hist(bins), mp(bins);
    const double g = gamma == 1.0 ? 0.99 : gamma;  // the notebook's guard against the gamma = 1 singularity
    const double a = (1.0 - std::sqrt(g)) * (1.0 - std::sqrt(g)), b = (1.0 + std::sqrt(g)) * (1.0 + std::sqrt(g));
    for (int i = 0; i < bins; ++i) {
        hist[i] = counts[i] / (edges[i + 1] - edges[i]) / static_cast<double>(x.size());
        const double c = 0.5 * (edges[i] + edges[i + 1]);
        mp[i] = (c >= a && c <= b) ? std::sqrt((b - c) * (c - a)) / (2.0 * std::numbers::pi * g * c) : 0.0;
    }
    // hist / sum, mp / sum, then scipy.stats.entropy (which normalises again): sum rel_entr(p, q).
    const double hs = std::accumulate(hist.begin(), hist.end(), 0.0);
    const double ms = std::accumulate(mp.begin(), mp.end(), 0.0);
    if (ms == 0.0) return nan;
    double kl = 0.0;
    for (int i = 0; i < bins; ++i) {
        const double p = hist[i] / hs, q = mp[i] / ms;
        if (p == 0.0) continue;
        if (q == 0.0) return inf;
        kl += p * std::log(p / q);
    }
    return kl;
}

FaithfulRmt faithful_rmt(const Eigen::MatrixXd& a, const RandomMatrixOptions& options) {
    const Eigen::Index T = a.rows();
    FaithfulRmt f{};
    const std::vector<double> e = eigenvalue_magnitudes(a);
    f.top_eigenvalues.assign(e.begin(), e.begin() + std::min<size_t>(e.size(), options.top_eigenvalues));
    f.largest_eigenvalue = e.front();
    f.spectral_gap = e.size() > 1 ? e[0] / e[1] : inf;  // numpy: x / 0 = inf
    double sum = 0.0, sum_sq = 0.0;
    for (double v : e) {
        sum += v;
        sum_sq += v * v;
    }
    f.participation_ratio = sum_sq > 0.0 ? sum * sum / sum_sq : 0.0;

    const std::vector<double> s = singular_values(a);
    double s_sq = 0.0;
    for (double v : s) s_sq += v * v;
    f.stable_rank = s[0] > 0.0 ? s_sq / (s[0] * s[0]) : 0.0;
    f.spectral_norm = s[0];

    if (e.size() > 2) {
        size_t gap_at = 0;
        for (size_t i = 1; i + 1 < e.size(); ++i)
            if (e[i] - e[i + 1] > e[gap_at] - e[gap_at + 1]) gap_at = i;
        f.bulk_edge = 0.5 * (e[gap_at] + e[gap_at + 1]);
    } else {
        f.bulk_edge = e.back();
    }
    std::vector<double> bulk;
    for (double v : e)
        if (v < f.bulk_edge) bulk.push_back(v);
    if (bulk.size() <= 1) bulk = e;
    f.bulk_mean = mean(bulk);
    f.bulk_std = stddev(bulk);

    const Eigen::VectorXd col = a.colwise().sum().transpose();
    const std::vector<double> cols(col.data(), col.data() + T);
    const double threshold = percentile_linear(cols, 90.0);
    double sink = 0.0;
    for (double c : cols)
        if (c >= threshold) sink += c;
    f.sink_concentration = col.sum() > 0.0 ? sink / col.sum() : 0.0;

    double entropy = 0.0;
    for (Eigen::Index i = 0; i < T; ++i)
        for (Eigen::Index j = 0; j < T; ++j) entropy -= a(i, j) * std::log2(a(i, j) + 1e-10);
    f.entropy = entropy / T;
    f.marchenko_pastur_kl = faithful_mp_kl(f.top_eigenvalues, 1.0, options.mp_bins);
    return f;
}

CorrectedRmt corrected_rmt(const Eigen::MatrixXd& a) {
    const Eigen::Index T = a.rows();
    CorrectedRmt c{};
    const Eigen::RowVectorXd mu = a.colwise().mean();
    const Eigen::MatrixXd x = a.rowwise() - mu;
    c.sigma2 = x.squaredNorm() / (double(T) * T);
    if (c.sigma2 > 0.0) {
        for (double s : singular_values(x)) c.eigenvalues.push_back(s * s / (T * c.sigma2));
        c.mp = compare_with_marchenko_pastur(c.eigenvalues, MarchenkoPastur{1.0, 1.0});
    }
    if (is_causal(a)) {
        const Eigen::VectorXd d = a.diagonal();
        c.self_attention_mean = d.mean();
        if (T >= 2) c.self_attention_max_after_first = d.tail(T - 1).maxCoeff();
        c.self_attention_participation = d.sum() * d.sum() / d.squaredNorm();
    }
    return c;
}

RandomMatrixResult analyze_random_matrix(const AttentionSample& sample, const RandomMatrixOptions& options) {
    validate_sample(sample);
    RandomMatrixResult result;
    for (int l : select_layers(options.layers, sample.num_layers())) {
        const Eigen::MatrixXd& a = sample.attention[l];
        result.layers.push_back({l, is_causal(a), faithful_rmt(a, options), corrected_rmt(a)});
    }
    return result;
}

json RandomMatrixResult::to_json() const {
    json out = {{"analysis", "random_matrix"}, {"layers", json::array()}};
    for (const RandomMatrixLayer& l : layers) {
        const FaithfulRmt& f = l.faithful;
        json faithful = {{"variant", "faithful"},
                         {"eigenvalues", json_numbers(f.top_eigenvalues)},
                         {"largest_eigenvalue", json_number(f.largest_eigenvalue)},
                         {"spectral_gap", json_number(f.spectral_gap)},
                         {"participation_ratio", json_number(f.participation_ratio)},
                         {"stable_rank", json_number(f.stable_rank)},
                         {"spectral_norm", json_number(f.spectral_norm)},
                         {"bulk_edge", json_number(f.bulk_edge)},
                         {"bulk_mean", json_number(f.bulk_mean)},
                         {"bulk_std", json_number(f.bulk_std)},
                         {"sink_concentration", json_number(f.sink_concentration)},
                         {"entropy", json_number(f.entropy)},
                         {"marchenko_pastur_kl", json_number(f.marchenko_pastur_kl)}};
        const CorrectedRmt& c = l.corrected;
        json corrected = {{"variant", "corrected"}, {"matrix", "A - 1 mu^T"}, {"gamma", 1.0},
                          {"sigma2", json_number(c.sigma2)}, {"eigenvalues", json_numbers(c.eigenvalues)}};
        if (c.mp) {
            corrected.update({{"ks_distance", c.mp->ks_distance},
                              {"moments", json_numbers(c.mp->moments)},
                              {"mp_moments", json_numbers(c.mp->mp_moments)},
                              {"upper_edge", MarchenkoPastur{1.0, 1.0}.upper_edge()},
                              {"outliers", c.mp->outliers.size()},
                              {"outlier_eigenvalues", json_numbers(c.mp->outliers)},
                              {"min_eigenvalue", c.mp->min_eigenvalue},
                              {"max_eigenvalue", c.mp->max_eigenvalue}});
        }
        if (c.self_attention_mean) corrected["self_attention_mean"] = *c.self_attention_mean;
        if (c.self_attention_max_after_first) corrected["self_attention_max_after_first"] = *c.self_attention_max_after_first;
        if (c.self_attention_participation) corrected["self_attention_participation"] = *c.self_attention_participation;
        out["layers"].push_back(
            {{"layer", l.layer}, {"causal", l.causal}, {"faithful", std::move(faithful)}, {"corrected", std::move(corrected)}});
    }
    return out;
}

}  // namespace sinklab::analysis
