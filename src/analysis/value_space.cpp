#include "analysis/value_space.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "analysis/results.h"
#include "analysis/stats.h"
#include "core/error.h"

namespace sinklab::analysis {

using nlohmann::json;

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// np.nan_to_num(h, nan=0, posinf=0, neginf=0): the notebooks read overflowed (fp16) states as 0.
Eigen::MatrixXd finite_or_zero(const Eigen::MatrixXd& h) {
    return h.unaryExpr([](double v) { return std::isfinite(v) ? v : 0.0; });
}

Eigen::MatrixXd rescaled(const Eigen::MatrixXd& hidden, double limit) {
    const Eigen::MatrixXd h = finite_or_zero(hidden);
    const double max_abs = h.cwiseAbs().maxCoeff();
    return max_abs > limit ? (h * (limit / max_abs)).eval() : h;
}

// np.corrcoef with the notebooks' guard: 0.0 unless both sides vary.
double guarded_pearson(const std::vector<double>& x, const std::vector<double>& y) {
    if (x.size() < 2 || stddev(x) == 0.0 || stddev(y) == 0.0) return 0.0;
    return pearson(x, y).r;
}

// scipy.stats.entropy(p, q): both normalised, sum of rel_entr.
double kl_divergence(const Eigen::RowVectorXd& p, const Eigen::RowVectorXd& q) {
    const double ps = p.sum(), qs = q.sum();
    double kl = 0.0;
    for (Eigen::Index j = 0; j < p.size(); ++j) {
        const double pj = p(j) / ps, qj = q(j) / qs;
        if (pj == 0.0) continue;
        if (qj == 0.0) return std::numeric_limits<double>::infinity();
        kl += pj * std::log(pj / qj);
    }
    return kl;
}

// Rows normalised to sum 1; an all-zero row becomes uniform (KL.ipynb).
Eigen::MatrixXd row_normalized(const Eigen::MatrixXd& a) {
    Eigen::MatrixXd p = a;
    for (Eigen::Index i = 0; i < p.rows(); ++i) {
        const double s = p.row(i).sum();
        if (s > 0.0) p.row(i) /= s;
        else p.row(i).setConstant(1.0 / p.cols());
    }
    return p;
}

// Per head: the mean over `rows` of KL(head row || average row).
std::vector<double> per_head_kl(const std::vector<Eigen::MatrixXd>& probs, const std::vector<int>& rows) {
    Eigen::MatrixXd avg = Eigen::MatrixXd::Zero(probs[0].rows(), probs[0].cols());
    for (const Eigen::MatrixXd& p : probs) avg += p;
    avg /= static_cast<double>(probs.size());
    std::vector<double> out;
    for (const Eigen::MatrixXd& p : probs) {
        double head = 0.0;
        for (int i : rows) head += kl_divergence(p.row(i), avg.row(i));
        out.push_back(head / static_cast<double>(rows.size()));
    }
    return out;
}

json kl_json(const KlSinkRemoval& kl) {
    json sinks = json::array();
    for (const SinkRemoval& s : kl.by_percentile)
        sinks.push_back({{"percentile", s.percentile},
                         {"sink_count", s.sinks.size()},
                         {"sink_indices", s.sinks},
                         {"sink_attention_percentage", json_number(s.sink_attention_percentage)},
                         {"avg_sink_concentration", json_number(s.avg_sink_concentration)},
                         {"kl_without_sinks", json_number(s.kl_without_sinks)},
                         {"avg_kl_reduction", json_number(s.kl_reduction)}});
    return {{"avg_kl_divergence", json_number(kl.kl)}, {"sinks", std::move(sinks)}};
}

json optional_json(const std::optional<double>& v) { return v ? json_number(*v) : json(nullptr); }

}  // namespace

std::vector<int> faithful_kl_layers(int num_layers) {
    SINKLAB_CHECK(num_layers >= 1, "analysis", "faithful_kl_layers: {} layers", num_layers);
    std::vector<int> layers;
    if (num_layers <= 6) {
        for (int l = 0; l < num_layers; ++l) layers.push_back(l);
        return layers;
    }
    layers.push_back(0);
    for (int l = 1; l < num_layers - 1; l += 2) layers.push_back(l);
    layers.push_back(num_layers - 1);
    return layers;
}

std::vector<int> reference_tokens(const Eigen::MatrixXd& attention, double threshold) {
    const int T = static_cast<int>(attention.rows());
    const Eigen::VectorXd received = attention.colwise().mean().transpose();
    std::vector<int> by_attention(T);  // ascending by received attention, as np.argsort
    std::iota(by_attention.begin(), by_attention.end(), 0);
    std::stable_sort(by_attention.begin(), by_attention.end(), [&](int a, int b) { return received(a) < received(b); });

    std::vector<int> ref;
    for (int j = 0; j < T; ++j)
        if (received(j) > threshold) ref.push_back(j);
    if (ref.empty()) {
        const int top = std::max(1, static_cast<int>(0.1 * T));
        ref.assign(by_attention.end() - top, by_attention.end());
    }
    const int cap = std::max(1, static_cast<int>(0.3 * T));
    if (static_cast<int>(ref.size()) > cap) {
        std::stable_sort(ref.begin(), ref.end(), [&](int a, int b) { return received(a) < received(b); });
        ref.erase(ref.begin(), ref.end() - cap);
    }
    std::sort(ref.begin(), ref.end());
    return ref;
}

double geometric_semantic_alignment(const Eigen::MatrixXd& attention, const Eigen::MatrixXd& hidden, bool visible_only,
                                    double scale_limit) {
    const Eigen::MatrixXd h = rescaled(hidden, scale_limit);
    const int T = static_cast<int>(attention.rows());
    const Eigen::MatrixXd gram = h * h.transpose();  // (T, T)
    // The notebook floors the squared norm at 1e-10, so its "norm < 1e-8 gives 0" branch never fires;
    // a zero vector has similarity 0 through its zero dot product.
    const Eigen::VectorXd norms = gram.diagonal().cwiseMax(1e-10).cwiseSqrt();
    std::vector<double> attn, sim;
    for (int i = 0; i < T; ++i)
        for (int j = 0; j < (visible_only ? i : T); ++j) {
            if (i == j) continue;
            attn.push_back(attention(i, j));
            sim.push_back(std::clamp(gram(i, j) / (norms(i) * norms(j)), -1.0, 1.0));
        }
    return guarded_pearson(attn, sim);
}

Eigen::VectorXd attention_entropy(const Eigen::MatrixXd& attention) {
    const double eps = 100.0 * std::numeric_limits<float>::epsilon();
    Eigen::VectorXd entropy = Eigen::VectorXd::Zero(attention.rows());
    for (Eigen::Index i = 0; i < attention.rows(); ++i) {
        double total = 0.0;
        for (Eigen::Index j = 0; j < attention.cols(); ++j)
            if (attention(i, j) > eps) total += attention(i, j);
        if (total < eps) continue;
        double h = 0.0;
        for (Eigen::Index j = 0; j < attention.cols(); ++j) {
            if (attention(i, j) <= eps) continue;
            const double p = attention(i, j) / total;
            if (p > eps) h -= p * std::log(p);
        }
        entropy(i) = h;
    }
    return entropy;
}

Eigen::VectorXd transformation_magnitude(const Eigen::MatrixXd& h_in, const Eigen::MatrixXd& h_out, double scale_limit) {
    SINKLAB_CHECK(h_in.rows() == h_out.rows() && h_in.cols() == h_out.cols(), "analysis",
                  "transformation_magnitude: hidden states are {}x{} and {}x{}", h_in.rows(), h_in.cols(), h_out.rows(),
                  h_out.cols());
    const Eigen::MatrixXd in = finite_or_zero(h_in), out = finite_or_zero(h_out);
    const double max_abs = std::max(in.cwiseAbs().maxCoeff(), out.cwiseAbs().maxCoeff());
    const double scale = max_abs > scale_limit ? scale_limit / max_abs : 1.0;
    const Eigen::MatrixXd diff = ((out - in) * scale).cwiseMax(-scale_limit).cwiseMin(scale_limit);
    return diff.rowwise().norm().cwiseMin(1e6);
}

DirectionalInfluence directional_influence(const Eigen::MatrixXd& attention, const Eigen::MatrixXd& hidden,
                                           double reference_threshold, double scale_limit) {
    const int T = static_cast<int>(attention.rows());
    DirectionalInfluence di;
    di.reference = reference_tokens(attention, reference_threshold);
    const Eigen::MatrixXd h = rescaled(hidden, scale_limit);
    Eigen::MatrixXd a = attention;
    for (int i = 0; i < T; ++i) {
        const double s = a.row(i).sum();
        if (s > 1e-10) a.row(i) /= s;
        else a.row(i).setZero();
    }
    // post_i = sum_j A_ij h_j, ref_i = sum_{j in R} A_ij h_j, non_ref_i = post_i - ref_i. Rows whose
    // weights sum to <= 1e-10 are zero after the normalisation, so post_i = 0 as the notebook sets it.
    const Eigen::MatrixXd post = a * h;  // (T, D)
    Eigen::MatrixXd ref = Eigen::MatrixXd::Zero(T, h.cols());
    for (int r : di.reference) ref += a.col(r) * h.row(r);
    const Eigen::MatrixXd non_ref = post - ref;
    std::vector<char> in_ref(T, 0);
    for (int r : di.reference) in_ref[r] = 1;
    std::vector<double> outside_influence, outside_magnitude, outside_change;
    for (int i = 0; i < T; ++i) {
        if (in_ref[i]) {
            di.influence.push_back(0.5);
            di.relative_magnitude.push_back(0.5);
            di.information_change.push_back(0.0);
            continue;
        }
        const double ref_norm = ref.row(i).norm(), post_norm = post.row(i).norm();
        const double magnitude = post_norm < 1e-10 ? (ref_norm < 1e-10 ? 0.0 : 1.0)
                                                   : std::clamp(ref_norm / post_norm, 0.0, 1.0);
        const double influence =
            (ref_norm < 1e-10 || post_norm < 1e-10)
                ? 0.5
                : (std::clamp(ref.row(i).dot(post.row(i)) / (ref_norm * post_norm), -1.0, 1.0) + 1.0) / 2.0;
        const double change = std::min((post.row(i) - non_ref.row(i)).norm(), 1e6);
        di.influence.push_back(influence);
        di.relative_magnitude.push_back(magnitude);
        di.information_change.push_back(change);
        outside_influence.push_back(influence);
        outside_magnitude.push_back(magnitude);
        outside_change.push_back(change);
    }
    di.mean_influence = mean(di.influence);
    di.mean_relative_magnitude = mean(di.relative_magnitude);
    di.mean_information_change = mean(di.information_change);
    if (!outside_influence.empty()) {
        di.corrected_influence = mean(outside_influence);
        di.corrected_relative_magnitude = mean(outside_magnitude);
        di.corrected_information_change = mean(outside_change);
    }
    return di;
}

KlSinkRemoval kl_sink_removal(const std::vector<Eigen::MatrixXd>& heads, std::span<const double> percentiles, int rows) {
    SINKLAB_CHECK(!heads.empty(), "analysis", "kl_sink_removal: no heads");
    const int T = static_cast<int>(heads[0].rows());
    const int H = static_cast<int>(heads.size());
    const std::vector<int> kl_rows = rows > 0 ? linspace_indices(T, rows) : linspace_indices(T, T);

    std::vector<Eigen::MatrixXd> probs;
    for (const Eigen::MatrixXd& a : heads) probs.push_back(row_normalized(a));
    const std::vector<double> kl_with = per_head_kl(probs, kl_rows);
    KlSinkRemoval out{mean(kl_with), {}};

    Eigen::VectorXd incoming = Eigen::VectorXd::Zero(T);  // sum over heads and queries, raw weights
    for (const Eigen::MatrixXd& a : heads) incoming += a.colwise().sum().transpose();
    const std::vector<double> incoming_v(incoming.data(), incoming.data() + T);
    for (double q : percentiles) {
        SinkRemoval s{q, {}, 0.0, 0.0, 0.0, 0.0};
        const double threshold = percentile_linear(incoming_v, q);
        for (int j = 0; j < T; ++j)
            if (incoming(j) >= threshold) s.sinks.push_back(j);
        double sink_attention = 0.0;
        for (int j : s.sinks) sink_attention += incoming(j);
        s.sink_attention_percentage = incoming.sum() > 0.0 ? 100.0 * sink_attention / incoming.sum() : 0.0;
        const int sampled = std::min(H, 4);
        for (int h = 0; h < sampled; ++h) {
            const double total = heads[h].sum();
            if (total <= 0.0) continue;
            double to_sinks = 0.0;
            for (int j : s.sinks) to_sinks += heads[h].col(j).sum();
            s.avg_sink_concentration += to_sinks / total;
        }
        s.avg_sink_concentration /= sampled;

        // Zero the sink columns and renormalise; a row left empty becomes uniform over the non-sinks.
        std::vector<char> is_sink(T, 0);
        for (int j : s.sinks) is_sink[j] = 1;
        const int non_sinks = T - static_cast<int>(s.sinks.size());
        std::vector<Eigen::MatrixXd> masked;
        for (const Eigen::MatrixXd& p : probs) {
            Eigen::MatrixXd m = p;
            for (int j : s.sinks) m.col(j).setZero();
            for (int i = 0; i < T; ++i) {
                const double sum = m.row(i).sum();
                if (sum > 0.0) {
                    m.row(i) /= sum;
                } else if (non_sinks > 0) {
                    for (int j = 0; j < T; ++j) m(i, j) = is_sink[j] ? 0.0 : 1.0 / non_sinks;
                }
            }
            masked.push_back(std::move(m));
        }
        const std::vector<double> kl_without = per_head_kl(masked, kl_rows);
        s.kl_without_sinks = mean(kl_without);
        double reduction = 0.0;
        for (int h = 0; h < H; ++h) reduction += kl_with[h] - kl_without[h];
        s.kl_reduction = reduction / H;
        out.by_percentile.push_back(std::move(s));
    }
    return out;
}

ValueSpaceResult analyze_value_space(const AttentionSample& sample, const ValueSpaceOptions& options) {
    validate_sample(sample);
    SINKLAB_CHECK(sample.has_hidden() || sample.has_heads(), "analysis",
                  "value-space analysis needs hidden states or per-head attention; the sample has neither");
    ValueSpaceResult result;
    for (int l : select_layers(options.layers, sample.num_layers())) {
        const Eigen::MatrixXd& a = sample.attention[l];
        ValueSpaceLayer layer{l, is_causal(a), std::nullopt, std::nullopt, std::nullopt};
        if (sample.has_hidden()) {
            const Eigen::MatrixXd& h_in = sample.hidden[l];
            HiddenStateMetrics m;
            m.gsa_faithful = geometric_semantic_alignment(a, h_in, false, options.gsa_scale_limit);
            m.gsa_corrected = geometric_semantic_alignment(a, h_in, layer.causal, options.gsa_scale_limit);
            const Eigen::VectorXd entropy = attention_entropy(a);
            const Eigen::VectorXd magnitude = transformation_magnitude(h_in, sample.hidden[l + 1], options.gsa_scale_limit);
            const std::vector<double> e(entropy.data(), entropy.data() + entropy.size());
            const std::vector<double> g(magnitude.data(), magnitude.data() + magnitude.size());
            m.entropy_mean = mean(e);
            m.entropy_std = stddev(e);
            m.magnitude_mean = mean(g);
            m.magnitude_std = stddev(g);
            m.entropy_magnitude_correlation = guarded_pearson(e, g);
            m.influence = directional_influence(a, h_in, options.reference_threshold, options.di_scale_limit);
            layer.hidden = std::move(m);
        }
        if (sample.has_heads()) {
            layer.kl_faithful = kl_sink_removal(sample.heads[l], options.kl_percentiles, options.kl_rows);
            layer.kl_corrected = kl_sink_removal(sample.heads[l], options.kl_percentiles, 0);
        }
        result.layers.push_back(std::move(layer));
    }
    return result;
}

json ValueSpaceResult::to_json() const {
    json out = {{"analysis", "value_space"}, {"layers", json::array()}};
    for (const ValueSpaceLayer& l : layers) {
        json faithful = {{"variant", "faithful"}};
        json corrected = {{"variant", "corrected"}};
        if (l.hidden) {
            const HiddenStateMetrics& m = *l.hidden;
            const DirectionalInfluence& di = m.influence;
            faithful.update({{"geometric_semantic_correlation", json_number(m.gsa_faithful)},
                             {"attention_entropy_mean", json_number(m.entropy_mean)},
                             {"attention_entropy_std", json_number(m.entropy_std)},
                             {"transformation_magnitude_mean", json_number(m.magnitude_mean)},
                             {"transformation_magnitude_std", json_number(m.magnitude_std)},
                             {"entropy_magnitude_correlation", json_number(m.entropy_magnitude_correlation)},
                             {"reference_tokens", di.reference},
                             {"num_reference_tokens", di.reference.size()},
                             {"directional_influence", json_number(di.mean_influence)},
                             {"relative_magnitude", json_number(di.mean_relative_magnitude)},
                             {"information_content_change", json_number(di.mean_information_change)}});
            corrected.update({{"geometric_semantic_correlation", json_number(m.gsa_corrected)},
                              {"pairs", l.causal ? "j < i" : "i != j"},
                              {"directional_influence", optional_json(di.corrected_influence)},
                              {"relative_magnitude", optional_json(di.corrected_relative_magnitude)},
                              {"information_content_change", optional_json(di.corrected_information_change)}});
        }
        if (l.kl_faithful) faithful["kl"] = kl_json(*l.kl_faithful);
        if (l.kl_corrected) corrected["kl"] = kl_json(*l.kl_corrected);
        out["layers"].push_back({{"layer", l.layer}, {"causal", l.causal}, {"faithful", std::move(faithful)},
                                 {"corrected", std::move(corrected)}});
    }
    return out;
}

json value_space_summary(const std::vector<ValueSpaceResult>& samples) {
    SINKLAB_CHECK(!samples.empty(), "analysis", "value_space_summary: no samples");
    using Getter = double (*)(const HiddenStateMetrics&);
    const std::tuple<const char*, const char*, Getter> metrics[] = {
        {"geometric_semantic_correlation", "faithful", [](const HiddenStateMetrics& m) { return m.gsa_faithful; }},
        {"geometric_semantic_correlation", "corrected", [](const HiddenStateMetrics& m) { return m.gsa_corrected; }},
        {"entropy_magnitude_correlation", "faithful",
         [](const HiddenStateMetrics& m) { return m.entropy_magnitude_correlation; }},
    };
    json out = {{"analysis", "value_space_summary"}, {"samples", samples.size()}, {"metrics", json::array()}};
    for (const auto& [name, variant, get] : metrics) {
        std::map<int, std::vector<double>> by_layer;
        std::vector<double> pooled;
        for (const ValueSpaceResult& s : samples)
            for (const ValueSpaceLayer& l : s.layers)
                if (l.hidden) {
                    by_layer[l.layer].push_back(get(*l.hidden));
                    pooled.push_back(get(*l.hidden));
                }
        if (pooled.empty()) continue;
        const TTest zero = one_sample_t_test(pooled, 0.0);
        const std::vector<double>& first = by_layer.begin()->second;
        const std::vector<double>& last = by_layer.rbegin()->second;
        const TTest first_last = welch_t_test(first, last);
        std::vector<double> index, layer_means;
        for (const auto& [layer, values] : by_layer) {
            index.push_back(layer);
            layer_means.push_back(mean(values));
        }
        const Correlation sp = spearman(index, layer_means), pe = pearson(index, layer_means);
        out["metrics"].push_back(
            {{"metric", name},
             {"variant", variant},
             {"n", pooled.size()},
             {"mean", json_number(mean(pooled))},
             {"median", json_number(median(pooled))},
             {"std", json_number(stddev(pooled))},
             {"t_test_zero", {{"t", json_number(zero.t)}, {"p", json_number(zero.p)}}},
             {"first_vs_last", {{"first_layer", by_layer.begin()->first}, {"last_layer", by_layer.rbegin()->first},
                                {"first_mean", json_number(mean(first))}, {"last_mean", json_number(mean(last))},
                                {"t", json_number(first_last.t)}, {"p", json_number(first_last.p)}}},
             {"layer_trend", {{"spearman_r", json_number(sp.r)}, {"spearman_p", json_number(sp.p)},
                              {"pearson_r", json_number(pe.r)}, {"pearson_p", json_number(pe.p)}}}});
    }
    return out;
}

}  // namespace sinklab::analysis
