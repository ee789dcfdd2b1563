#include "analysis/diffusion.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "analysis/results.h"
#include "core/error.h"

namespace sinklab::analysis {

using nlohmann::json;

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// One attention matrix, applied on either side with the triangular kernel when it is causal.
class Operator {
public:
    explicit Operator(const Eigen::MatrixXd& a) : a_(a), causal_(is_causal(a)) {}
    bool causal() const { return causal_; }
    Eigen::VectorXd apply(const Eigen::VectorXd& v) const {  // A v
        if (causal_) return a_.triangularView<Eigen::Lower>() * v;
        return a_ * v;
    }
    Eigen::VectorXd apply_transpose(const Eigen::VectorXd& u) const {  // (u^T A)^T
        if (causal_) return a_.triangularView<Eigen::Lower>().transpose() * u;
        return a_.transpose() * u;
    }

private:
    const Eigen::MatrixXd& a_;
    bool causal_;
};

double mean_all(const Eigen::VectorXd& v) { return v.mean(); }
double mean_from_row1(const Eigen::VectorXd& v) {
    if (v.size() < 2) return nan;
    return v.tail(v.size() - 1).mean();
}

std::vector<double> harmonic_terms(int T) {
    std::vector<double> x(T);
    for (int i = 0; i < T; ++i) x[i] = 1.0 / (i + 1);
    return x;
}

// log C(k, r) - k log 2: the binomial(k, 1/2) weights of the lazy walk, safe for any k.
double log_half_binomial(int k, int r) {
    return std::lgamma(k + 1.0) - std::lgamma(r + 1.0) - std::lgamma(k - r + 1.0) - k * std::log(2.0);
}

double lazy_mass_from_h(const std::vector<double>& h, int T, int k) {
    double s = 0.0;
    for (int r = 0; r <= k; ++r) s += std::exp(log_half_binomial(k, r)) * h[r];
    return s / T;
}

std::optional<int> first_reaching(const std::vector<double>& masses, double level) {  // masses[k-1] = s_k
    for (size_t k = 0; k < masses.size(); ++k)
        if (masses[k] >= level) return static_cast<int>(k + 1);
    return std::nullopt;
}

json view_json(const DiffusionView& v, const char* variant, const char* rows) {
    json j = {{"variant", variant}, {"rows", rows}};
    json mass = json::array();
    for (const PowerMass& p : v.power_mass)
        mass.push_back({{"k", p.k}, {"mass", json_number(p.mass)}, {"baseline", json_number(p.baseline)},
                        {"excess", json_number(p.excess)}});
    j["power_mass"] = std::move(mass);
    json levels = json::array();
    for (const MassLevel& m : v.levels)
        levels.push_back({{"level", m.level},
                          {"k_star", m.k ? json(*m.k) : json(nullptr)},
                          {"baseline_k_star", m.baseline_k ? json(*m.baseline_k) : json(nullptr)}});
    j["mass_levels"] = std::move(levels);
    j["depth"] = {{"mass", json_number(v.depth_mass)},
                  {"baseline", json_number(v.depth_baseline)},
                  {"lazy_mass", json_number(v.lazy_depth_mass)},
                  {"lazy_baseline", json_number(v.lazy_depth_baseline)}};
    json routing = json::array();
    for (const ColumnRouting& c : v.routing)
        routing.push_back({{"k", c.k}, {"column0_share", json_number(c.column0_share)},
                           {"column_sums", json_numbers(c.column_sums)}});
    j["gradient_routing"] = std::move(routing);
    if (!v.head_power_mass.empty()) {
        json heads = json::array();
        for (const auto& h : v.head_power_mass) heads.push_back(json_numbers(h));
        j["head_power_mass"] = std::move(heads);
    }
    return j;
}

// s_1..s_{k_last} of one matrix for both row conventions, iterating v <- A v from e_0.
struct MassSeries {
    std::vector<double> all_rows, from_row1;
};
MassSeries power_masses(const Operator& op, int T, int k_last, const std::vector<double>& levels, int k_min) {
    MassSeries s;
    Eigen::VectorXd v = Eigen::VectorXd::Unit(T, 0);
    const auto reached = [&](const std::vector<double>& m) {
        return std::all_of(levels.begin(), levels.end(), [&](double q) { return first_reaching(m, q).has_value(); });
    };
    for (int k = 1; k <= k_last; ++k) {
        v = op.apply(v);
        s.all_rows.push_back(mean_all(v));
        s.from_row1.push_back(mean_from_row1(v));
        if (k >= k_min && reached(s.all_rows) && reached(s.from_row1)) break;
    }
    return s;
}

}  // namespace

std::vector<double> complete_homogeneous(std::span<const double> x, int k_max) {
    SINKLAB_CHECK(k_max >= 0, "analysis", "complete_homogeneous: degree {} is negative", k_max);
    std::vector<double> h(k_max + 1, 0.0);
    h[0] = 1.0;
    for (double xi : x)
        for (int r = 1; r <= k_max; ++r) h[r] += xi * h[r - 1];
    return h;
}

Eigen::MatrixXd uniform_causal_attention(int T) {
    SINKLAB_CHECK(T >= 1, "analysis", "uniform causal attention needs T >= 1, got {}", T);
    Eigen::MatrixXd u = Eigen::MatrixXd::Zero(T, T);
    for (int i = 0; i < T; ++i) u.row(i).head(i + 1).setConstant(1.0 / (i + 1));
    return u;
}

Eigen::MatrixXd uniform_causal_power(int T, int k) {
    SINKLAB_CHECK(T >= 1 && k >= 1, "analysis", "uniform_causal_power needs T >= 1 and k >= 1, got T={} k={}", T, k);
    Eigen::MatrixXd p = Eigen::MatrixXd::Zero(T, T);
    for (int j = 0; j < T; ++j) {
        // Add the variables 1/(j+1), 1/(j+2), ... one at a time: h then holds h(1/j..1/i), 1-indexed.
        std::vector<double> h(k, 0.0);
        h[0] = 1.0;
        for (int i = j; i < T; ++i) {
            const double x = 1.0 / (i + 1);
            for (int r = 1; r < k; ++r) h[r] += x * h[r - 1];
            p(i, j) = h[k - 1] / (i + 1);
        }
    }
    return p;
}

std::vector<double> uniform_column_sums(int T, int k) {
    SINKLAB_CHECK(T >= 1 && k >= 0, "analysis", "uniform_column_sums needs T >= 1 and k >= 0, got T={} k={}", T, k);
    std::vector<double> sums(T);
    std::vector<double> h(k + 1, 0.0);
    h[0] = 1.0;
    for (int j = T - 1; j >= 0; --j) {  // add 1/T, 1/(T-1), ..., so h = h(1/j..1/T) at column j
        const double x = 1.0 / (j + 1);
        for (int r = 1; r <= k; ++r) h[r] += x * h[r - 1];
        sums[j] = h[k];
    }
    return sums;
}

double uniform_power_mass(int T, int k) {
    SINKLAB_CHECK(T >= 1 && k >= 0, "analysis", "uniform_power_mass needs T >= 1 and k >= 0, got T={} k={}", T, k);
    return complete_homogeneous(harmonic_terms(T), k)[k] / T;
}

double uniform_lazy_power_mass(int T, int k) {
    SINKLAB_CHECK(T >= 1 && k >= 0, "analysis", "uniform_lazy_power_mass needs T >= 1 and k >= 0, got T={} k={}", T,
                  k);
    return lazy_mass_from_h(complete_homogeneous(harmonic_terms(T), k), T, k);
}

double mass_from_row1(double all_rows_mass, int T) {
    if (T < 2) return nan;
    return (T * all_rows_mass - 1.0) / (T - 1);
}

Eigen::VectorXd stationary_distribution(const Eigen::MatrixXd& attention) {
    const Eigen::Index T = attention.rows();
    SINKLAB_CHECK(T >= 1 && attention.cols() == T, "analysis", "stationary distribution of a {}x{} matrix",
                  attention.rows(), attention.cols());
    // float32 attention sums to 1 only within rounding: the chain is its rows renormalised in double
    const Eigen::MatrixXd a = attention.array().colwise() / attention.rowwise().sum().array();
    Eigen::MatrixXd m = a.transpose() - Eigen::MatrixXd::Identity(T, T);
    m.row(T - 1).setOnes();  // (A^T - I) has rank T - 1 when one class is closed: sum pi = 1 completes it
    const Eigen::VectorXd pi = m.partialPivLu().solve(Eigen::VectorXd::Unit(T, T - 1));
    const double residual = (a.transpose() * pi - pi).cwiseAbs().maxCoeff();
    SINKLAB_CHECK(pi.allFinite() && pi.minCoeff() > -1e-9 && residual < 1e-9, "analysis",
                  "the attention has no unique stationary distribution (residual {:.2e}): its chain has more than one "
                  "closed class", residual);
    return pi.cwiseMax(0.0) / pi.cwiseMax(0.0).sum();
}

DiffusionResult analyze_diffusion(const AttentionSample& sample, const DiffusionOptions& options) {
    validate_sample(sample);
    SINKLAB_CHECK(!options.powers.empty(), "analysis", "diffusion: no powers requested");
    for (int k : options.powers) SINKLAB_CHECK(k >= 1, "analysis", "diffusion: power {} must be >= 1", k);
    const int k_top = *std::max_element(options.powers.begin(), options.powers.end());
    SINKLAB_CHECK(options.max_power >= k_top, "analysis", "diffusion: max_power {} is below the largest power {}",
                  options.max_power, k_top);
    const int T = sample.num_tokens();
    const int L = sample.num_layers();
    const std::vector<int> layers = select_layers(options.layers, L);

    // Baselines of U_T: h_0..h_K(1, ..., 1/T) gives s_k and the lazy masses for every k <= K.
    const int depth_top = *std::max_element(layers.begin(), layers.end()) + 1;
    const int K = std::max(options.max_power, depth_top);
    const std::vector<double> h = complete_homogeneous(harmonic_terms(T), K);
    const auto baseline = [&](int k) { return h[k] / T; };
    std::vector<double> baseline_all(options.max_power), baseline_row1(options.max_power);
    for (int k = 1; k <= options.max_power; ++k) {
        baseline_all[k - 1] = baseline(k);
        baseline_row1[k - 1] = mass_from_row1(baseline(k), T);
    }

    // Depth composition over layers 0..l, plain and lazy, for every l up to the last selected.
    std::vector<Eigen::VectorXd> depth(depth_top), lazy_depth(depth_top);
    {
        Eigen::VectorXd v = Eigen::VectorXd::Unit(T, 0), w = v;
        for (int l = 0; l < depth_top; ++l) {
            const Operator op(sample.attention[l]);
            v = op.apply(v);
            w = 0.5 * (w + op.apply(w));
            depth[l] = v;
            lazy_depth[l] = w;
        }
    }

    // Uniform bidirectional attention 1 1^T / T: every power, product and lazy walk of it is itself.
    const std::vector<double> baseline_bidirectional(options.max_power, 1.0 / T);

    DiffusionResult result;
    result.powers = options.powers;
    for (int l : layers) {
        const Eigen::MatrixXd& a = sample.attention[l];
        const Operator op(a);
        const bool causal = op.causal();
        DiffusionLayer layer{l, causal, std::nullopt, std::nullopt, {}, {}};
        if (causal && T >= 2) layer.mixing_rate = a.diagonal().tail(T - 1).maxCoeff();
        if (!causal) {
            // not a DAG: A^k -> 1 pi^T at the rate |lambda_2|
            StationaryMass stationary;
            const Eigen::VectorXd pi = stationary_distribution(a);
            stationary.distribution.assign(pi.data(), pi.data() + T);
            for (const MarkedToken& token : sample.special_tokens)
                stationary.special_tokens.push_back({token, pi(token.position)});
            stationary.uniform = 1.0 / T;
            layer.stationary = std::move(stationary);
            Eigen::VectorXd moduli = Eigen::EigenSolver<Eigen::MatrixXd>(a, false).eigenvalues().cwiseAbs();
            std::sort(moduli.data(), moduli.data() + T, std::greater<>());
            if (T >= 2) layer.mixing_rate = moduli(1);
        }

        const MassSeries series = power_masses(op, T, options.max_power, options.levels, k_top);
        // Row 0 of a causal A^k is e_0, so the corrected view skips it; a non-causal row 0 is like the others.
        const auto fill = [&](DiffusionView& view, const std::vector<double>& masses,
                              const std::vector<double>& base, bool row1) {
            for (int k : options.powers)
                view.power_mass.push_back({k, masses[k - 1], base[k - 1], masses[k - 1] - base[k - 1]});
            for (double q : options.levels) view.levels.push_back({q, first_reaching(masses, q), first_reaching(base, q)});
            const int depth_k = l + 1;
            view.depth_mass = row1 ? mean_from_row1(depth[l]) : mean_all(depth[l]);
            view.lazy_depth_mass = row1 ? mean_from_row1(lazy_depth[l]) : mean_all(lazy_depth[l]);
            const double plain_base = causal ? baseline(depth_k) : 1.0 / T;
            const double lazy_base = causal ? lazy_mass_from_h(h, T, depth_k) : 1.0 / T;
            view.depth_baseline = row1 ? mass_from_row1(plain_base, T) : plain_base;
            view.lazy_depth_baseline = row1 ? mass_from_row1(lazy_base, T) : lazy_base;
        };
        if (causal) {
            fill(layer.all_rows, series.all_rows, baseline_all, false);
            fill(layer.from_row1, series.from_row1, baseline_row1, true);
        } else {
            fill(layer.all_rows, series.all_rows, baseline_bidirectional, false);
            fill(layer.from_row1, series.all_rows, baseline_bidirectional, false);
        }

        // Gradient routing: u^T <- u^T A from u = 1 (all rows) and from u = 1 - e_0 (rows >= 1;
        // all rows again for a non-causal layer).
        Eigen::VectorXd u_all = Eigen::VectorXd::Ones(T);
        Eigen::VectorXd u_row1 = causal ? Eigen::VectorXd(u_all - Eigen::VectorXd::Unit(T, 0)) : u_all;
        for (int k = 1; k <= k_top; ++k) {
            u_all = op.apply_transpose(u_all);
            u_row1 = op.apply_transpose(u_row1);
            if (std::find(options.powers.begin(), options.powers.end(), k) == options.powers.end()) continue;
            layer.all_rows.routing.push_back(
                {k, u_all(0) / T, std::vector<double>(u_all.data(), u_all.data() + T)});
            const double rows = causal ? T - 1 : T;
            layer.from_row1.routing.push_back(
                {k, rows >= 1 ? u_row1(0) / rows : nan, std::vector<double>(u_row1.data(), u_row1.data() + T)});
        }

        if (sample.has_heads()) {
            for (const Eigen::MatrixXd& head : sample.heads[l]) {
                const MassSeries hs = power_masses(Operator(head), T, k_top, {}, k_top);
                std::vector<double> all, row1;
                for (int k : options.powers) {
                    all.push_back(hs.all_rows[k - 1]);
                    row1.push_back(causal ? hs.from_row1[k - 1] : hs.all_rows[k - 1]);
                }
                layer.all_rows.head_power_mass.push_back(std::move(all));
                layer.from_row1.head_power_mass.push_back(std::move(row1));
            }
        }
        result.layers.push_back(std::move(layer));
    }
    return result;
}

json DiffusionResult::to_json() const {
    json out = {{"analysis", "diffusion"}, {"powers", powers}, {"layers", json::array()}};
    for (const DiffusionLayer& l : layers) {
        json faithful = view_json(l.all_rows, "faithful", "all");
        json corrected = view_json(l.from_row1, "corrected", l.causal ? "from 1" : "all");
        for (json* view : {&faithful, &corrected})
            (*view)["baseline_kind"] = l.causal ? "uniform causal attention (closed form)"
                                                : "uniform bidirectional attention, 1/T";
        corrected["mixing_rate"] = l.mixing_rate ? json_number(*l.mixing_rate) : json(nullptr);
        json layer = {{"layer", l.layer},
                      {"causal", l.causal},
                      {"graph", l.causal ? "DAG (causal attention)"
                                         : "not a DAG (bidirectional attention): A^k -> 1 pi^T, pi stationary"},
                      {"faithful", std::move(faithful)},
                      {"corrected", std::move(corrected)}};
        if (l.stationary) {
            json specials = json::array();
            for (const auto& [token, mass] : l.stationary->special_tokens)
                specials.push_back({{"token", token.name}, {"position", token.position}, {"mass", json_number(mass)}});
            layer["stationary"] = {{"distribution", json_numbers(l.stationary->distribution)},
                                   {"special_tokens", std::move(specials)},
                                   {"uniform", json_number(l.stationary->uniform)}};
        }
        out["layers"].push_back(std::move(layer));
    }
    return out;
}

}  // namespace sinklab::analysis
