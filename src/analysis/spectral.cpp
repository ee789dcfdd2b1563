#include "analysis/spectral.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <numeric>

#include <Spectra/MatOp/DenseSymShiftSolve.h>
#include <Spectra/SymEigsShiftSolver.h>

#include "analysis/results.h"
#include "analysis/stats.h"
#include "core/error.h"

namespace sinklab::analysis {

using nlohmann::json;

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// Connected blocks of the off-diagonal pattern of a symmetric matrix, each in ascending order.
std::vector<std::vector<int>> connected_blocks(const Eigen::MatrixXd& m) {
    const int n = static_cast<int>(m.rows());
    std::vector<int> block(n, -1);
    std::vector<std::vector<int>> blocks;
    for (int start = 0; start < n; ++start) {
        if (block[start] >= 0) continue;
        const int id = static_cast<int>(blocks.size());
        blocks.emplace_back();
        std::deque<int> queue = {start};
        block[start] = id;
        while (!queue.empty()) {
            const int v = queue.front();
            queue.pop_front();
            blocks[id].push_back(v);
            for (int w = 0; w < n; ++w)
                if (w != v && block[w] < 0 && (m(v, w) != 0.0 || m(w, v) != 0.0)) {
                    block[w] = id;
                    queue.push_back(w);
                }
        }
        std::sort(blocks[id].begin(), blocks[id].end());
    }
    return blocks;
}

std::vector<double> dense_smallest(const Eigen::MatrixXd& m, int count) {
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(m, Eigen::EigenvaluesOnly);
    SINKLAB_ASSERT(es.info() == Eigen::Success);
    const Eigen::VectorXd& ev = es.eigenvalues();  // ascending
    const int take = std::min<int>(count, static_cast<int>(ev.size()));
    return std::vector<double>(ev.data(), ev.data() + take);
}

// Spectra shift-invert Lanczos; empty if it does not converge.
std::vector<double> shift_invert_smallest(const Eigen::MatrixXd& m, int count, double shift) {
    const int n = static_cast<int>(m.rows());
    using Op = Spectra::DenseSymShiftSolve<double>;
    Op op(m);
    const int ncv = std::min(n, std::max(2 * count + 1, 20));
    Spectra::SymEigsShiftSolver<Op> eigs(op, count, ncv, shift);
    eigs.init();
    eigs.compute(Spectra::SortRule::LargestMagn, 1000, 1e-12, Spectra::SortRule::SmallestAlge);
    if (eigs.info() != Spectra::CompInfo::Successful) return {};
    const Eigen::VectorXd ev = eigs.eigenvalues();
    std::vector<double> out(ev.data(), ev.data() + ev.size());
    std::sort(out.begin(), out.end());
    return out;
}

InDegreeMetrics metrics_of(const Eigen::MatrixXd& b, const std::vector<int>& nodes) {
    std::vector<double> in_degrees;
    in_degrees.reserve(nodes.size());
    for (int v : nodes) in_degrees.push_back(b.col(v).sum());
    return in_degree_metrics(in_degrees);
}

// Nodes of a networkx DiGraph built from B's edge list: those with at least one edge.
std::vector<int> edge_list_nodes(const Eigen::MatrixXd& b) {
    std::vector<int> nodes;
    for (int v = 0; v < b.rows(); ++v)
        if (b.row(v).sum() > 0.0 || b.col(v).sum() > 0.0) nodes.push_back(v);
    return nodes;
}

std::vector<int> all_nodes(int T) {
    std::vector<int> nodes(T);
    std::iota(nodes.begin(), nodes.end(), 0);
    return nodes;
}

// Unweighted BFS distances from `source` in the undirected graph of S (self-loops ignored).
std::vector<int> bfs_distances(const Eigen::MatrixXd& s, int source) {
    const int n = static_cast<int>(s.rows());
    std::vector<int> dist(n, -1);
    std::deque<int> queue = {source};
    dist[source] = 0;
    while (!queue.empty()) {
        const int v = queue.front();
        queue.pop_front();
        for (int w = 0; w < n; ++w)
            if (w != v && s(v, w) > 0.0 && dist[w] < 0) {
                dist[w] = dist[v] + 1;
                queue.push_back(w);
            }
    }
    return dist;
}

// networkx.average_shortest_path_length on the largest connected component (the first one of
// maximal size in node order, as max(connected_components, key=len)); empty for a single node.
std::optional<double> average_shortest_path(const Eigen::MatrixXd& s) {
    const int n = static_cast<int>(s.rows());
    std::vector<int> component(n, -1);
    std::vector<std::vector<int>> components;
    for (int v = 0; v < n; ++v) {
        if (component[v] >= 0) continue;
        const std::vector<int> dist = bfs_distances(s, v);
        components.emplace_back();
        for (int w = 0; w < n; ++w)
            if (dist[w] >= 0) {
                component[w] = static_cast<int>(components.size()) - 1;
                components.back().push_back(w);
            }
    }
    const auto largest = std::max_element(components.begin(), components.end(),
                                          [](const auto& a, const auto& b) { return a.size() < b.size(); });
    if (largest->size() < 2) return std::nullopt;
    double total = 0.0;
    for (int v : *largest) {
        const std::vector<int> dist = bfs_distances(s, v);
        for (int w : *largest) total += dist[w];
    }
    const double m = static_cast<double>(largest->size());
    return total / (m * (m - 1.0));
}

// networkx.average_clustering of the undirected, unweighted graph of S (self-loops ignored).
double average_clustering(const Eigen::MatrixXd& s) {
    const int n = static_cast<int>(s.rows());
    double total = 0.0;
    for (int v = 0; v < n; ++v) {
        std::vector<int> nbrs;
        for (int w = 0; w < n; ++w)
            if (w != v && s(v, w) > 0.0) nbrs.push_back(w);
        const double d = static_cast<double>(nbrs.size());
        if (d < 2) continue;
        double links = 0.0;
        for (size_t a = 0; a < nbrs.size(); ++a)
            for (size_t b = a + 1; b < nbrs.size(); ++b)
                if (s(nbrs[a], nbrs[b]) > 0.0) links += 1.0;
        total += 2.0 * links / (d * (d - 1.0));
    }
    return total / n;
}

json eigen_json(const std::vector<double>& ev) { return json_numbers(ev); }

json spectrum_json(const Spectrum& s, const char* second_name) {
    const auto at = [&](size_t i) { return i < s.eigenvalues.size() ? s.eigenvalues[i] : nan; };
    return {{"eigenvalues", eigen_json(s.eigenvalues)},
            {second_name, json_number(at(1))},
            {"spectral_gap", json_number(at(2) - at(1))},
            {"solver", s.solver}};
}

json degrees_json(const InDegreeMetrics& d) {
    return {{"nodes", d.nodes},
            {"max_in_degree", d.max_in_degree},
            {"star_likeness", d.star_likeness},
            {"basic_star_likeness", d.basic_star_likeness},
            {"gini_coefficient", d.gini},
            {"degree_centralization", d.degree_centralization},
            {"degree_variance", d.degree_variance}};
}

json optional_json(const std::optional<double>& v) { return v ? json_number(*v) : json(nullptr); }

}  // namespace

Spectrum smallest_eigenvalues(const Eigen::MatrixXd& m, int count, int dense_max, double shift) {
    SINKLAB_CHECK(m.rows() == m.cols() && m.rows() > 0, "analysis", "smallest_eigenvalues: matrix is {}x{}",
                  m.rows(), m.cols());
    SINKLAB_CHECK(count >= 1, "analysis", "smallest_eigenvalues: count {} must be >= 1", count);
    Spectrum out{{}, "dense"};
    size_t largest = 0;
    for (const std::vector<int>& block : connected_blocks(m)) {
        const int size = static_cast<int>(block.size());
        if (size == 1) {
            out.eigenvalues.push_back(m(block[0], block[0]));
            continue;
        }
        Eigen::MatrixXd sub(size, size);
        for (int a = 0; a < size; ++a)
            for (int b = 0; b < size; ++b) sub(a, b) = m(block[a], block[b]);
        const int want = std::min(count, size);
        std::vector<double> ev;
        std::string solver = "dense";
        if (size > dense_max && size > want + 1) {
            ev = shift_invert_smallest(sub, want, shift);
            solver = "shift-invert";
        }
        if (ev.empty()) {
            ev = dense_smallest(sub, want);
            solver = "dense";
        }
        if (block.size() > largest) {
            largest = block.size();
            out.solver = solver;
        }
        out.eigenvalues.insert(out.eigenvalues.end(), ev.begin(), ev.end());
    }
    std::sort(out.eigenvalues.begin(), out.eigenvalues.end());
    out.eigenvalues.resize(std::min<size_t>(count, out.eigenvalues.size()));
    return out;
}

Eigen::MatrixXd laplacian(const Eigen::MatrixXd& s) {
    Eigen::MatrixXd l = -s;
    l.diagonal() += s.rowwise().sum();
    return l;
}

Eigen::MatrixXd normalized_laplacian(const Eigen::MatrixXd& w) {
    Eigen::MatrixXd off = w;
    off.diagonal().setZero();
    const Eigen::VectorXd degree = off.rowwise().sum();
    Eigen::VectorXd inv_sqrt(degree.size());
    for (Eigen::Index i = 0; i < degree.size(); ++i) inv_sqrt(i) = degree(i) > 0.0 ? 1.0 / std::sqrt(degree(i)) : 0.0;
    Eigen::MatrixXd l = -(inv_sqrt.asDiagonal() * off * inv_sqrt.asDiagonal());
    for (Eigen::Index i = 0; i < degree.size(); ++i)
        if (degree(i) > 0.0) l(i, i) += 1.0;
    return l;
}

InDegreeMetrics in_degree_metrics(std::span<const double> in_degrees) {
    InDegreeMetrics m;
    m.nodes = static_cast<int>(in_degrees.size());
    if (in_degrees.empty()) return m;
    m.max_in_degree = *std::max_element(in_degrees.begin(), in_degrees.end());
    const double n_minus_1 = m.nodes - 1.0;
    m.basic_star_likeness = m.max_in_degree / std::max(1.0, n_minus_1);
    if (n_minus_1 * n_minus_1 > 0.0 && m.max_in_degree > 0.0) {
        double diff = 0.0;
        for (double d : in_degrees) diff += m.max_in_degree - d;
        m.degree_centralization = diff / (n_minus_1 * n_minus_1);
    }
    m.degree_variance = m.nodes > 1 ? variance(in_degrees) : 0.0;
    m.gini = gini(in_degrees);
    m.star_likeness = 0.3 * m.basic_star_likeness + 0.7 * m.gini;
    return m;
}

SpectralResult analyze_spectral(const AttentionSample& sample, const SpectralOptions& options) {
    validate_sample(sample);
    const int T = sample.num_tokens();
    const auto spectrum_of = [&](const Eigen::MatrixXd& m) {
        return smallest_eigenvalues(m, 3, options.dense_max, options.shift);
    };

    SpectralResult result;
    for (int l : select_layers(options.layers, sample.num_layers())) {
        const Eigen::MatrixXd& a = sample.attention[l];
        SpectralLayer layer{l, {}, {}, {}, {}, {}};

        // Binarised graph and its Laplacian spectrum, shared by both notebooks at equal thresholds.
        std::map<double, Eigen::MatrixXd> binary;
        std::map<double, std::vector<double>> spectra;
        const auto binary_at = [&](double tau) -> const Eigen::MatrixXd& {
            auto it = binary.find(tau);
            if (it == binary.end()) it = binary.emplace(tau, (a.array() > tau).cast<double>().matrix()).first;
            return it->second;
        };
        const auto spectrum_at = [&](double tau) -> const std::vector<double>& {
            auto it = spectra.find(tau);
            if (it == spectra.end()) {
                const Eigen::MatrixXd& b = binary_at(tau);
                it = spectra.emplace(tau, spectrum_of(laplacian(0.5 * (b + b.transpose()))).eigenvalues).first;
            }
            return it->second;
        };

        for (double tau : options.fiedler_thresholds) {
            const Eigen::MatrixXd& b = binary_at(tau);
            const double connections = b.sum();
            if (T < 2 || connections < 2) {
                layer.fiedler.push_back({tau, 0.0, 0.0, std::nullopt, std::nullopt, std::nullopt});
                continue;
            }
            const InDegreeMetrics d = metrics_of(b, edge_list_nodes(b));
            layer.fiedler.push_back({tau, spectrum_at(tau)[1], d.basic_star_likeness, d.degree_centralization,
                                     d.degree_variance, connections / (double(T) * T)});
        }

        for (double tau : options.laplacian_thresholds) {
            const Eigen::MatrixXd& b = binary_at(tau);
            LaplacianThreshold t{};
            t.tau = tau;
            t.connections = static_cast<int>(b.sum());
            t.connection_density = t.connections / (double(T) * T);
            t.effective = t.connection_density >= 0.05 && t.connection_density <= 0.95;
            t.computed = t.effective || l % 4 == 0;
            t.too_few_connections = T < 2 || t.connections < 2;
            if (t.computed && t.too_few_connections) {
                t.eigenvalues.assign(std::min(T, 3), 0.0);
            } else if (t.computed) {
                t.eigenvalues = spectrum_at(tau);
                const auto ev = [&](size_t i) { return i < t.eigenvalues.size() ? t.eigenvalues[i] : 0.0; };
                t.fiedler_value = ev(1);
                t.spectral_gap = t.eigenvalues.size() > 2 ? ev(2) - ev(1) : 0.0;
                t.degrees = metrics_of(b, T <= 50 ? all_nodes(T) : edge_list_nodes(b));
                if (T <= 30) {
                    const Eigen::MatrixXd s = 0.5 * (b + b.transpose());
                    t.avg_shortest_path = average_shortest_path(s);
                    t.clustering = average_clustering(s);
                }
            }
            layer.laplacian.push_back(std::move(t));

            Eigen::MatrixXd no_loops = b;
            no_loops.diagonal().setZero();
            layer.in_degree.push_back({tau, metrics_of(no_loops, all_nodes(T))});
        }

        Eigen::MatrixXd w = 0.5 * (a + a.transpose());
        w.diagonal().setZero();
        layer.weighted = spectrum_of(laplacian(w));
        layer.normalized = spectrum_of(normalized_laplacian(w));
        result.layers.push_back(std::move(layer));
    }
    return result;
}

json SpectralResult::to_json() const {
    json out = {{"analysis", "spectral"}, {"layers", json::array()}};
    for (const SpectralLayer& l : layers) {
        json fiedler = json::array();
        for (const FiedlerThreshold& f : l.fiedler) {
            json j = {{"tau", f.tau}, {"fiedler_value", json_number(f.fiedler_value)}, {"star_likeness", f.star_likeness}};
            if (f.degree_centralization) j["degree_centralization"] = *f.degree_centralization;
            if (f.degree_variance) j["degree_variance"] = *f.degree_variance;
            if (f.connection_density) j["connection_density"] = *f.connection_density;
            fiedler.push_back(std::move(j));
        }
        json lap = json::array();
        for (const LaplacianThreshold& t : l.laplacian) {
            json j = {{"tau", t.tau}, {"effective", t.effective}};
            if (!t.computed) {
                j["connection_density"] = t.connection_density;
            } else if (t.too_few_connections) {
                // The notebook's record for < 2 connections: zeros, no density, no Gini.
                j.update({{"eigenvalues", eigen_json(t.eigenvalues)}, {"first_eigenvalue", 0.0}, {"fiedler_value", 0.0},
                          {"spectral_gap", 0.0}, {"max_in_degree", 0}, {"star_likeness", 0.0},
                          {"degree_centralization", 0.0}, {"degree_variance", 0.0},
                          {"avg_shortest_path", nullptr}, {"clustering_coefficient", nullptr}});
            } else {
                j.update(degrees_json(t.degrees));
                j.update({{"connection_density", t.connection_density}, {"connections", t.connections},
                          {"eigenvalues", eigen_json(t.eigenvalues)},
                          {"first_eigenvalue", json_number(t.eigenvalues.empty() ? 0.0 : t.eigenvalues[0])},
                          {"fiedler_value", json_number(t.fiedler_value)}, {"spectral_gap", json_number(t.spectral_gap)},
                          {"avg_shortest_path", optional_json(t.avg_shortest_path)},
                          {"clustering_coefficient", optional_json(t.clustering)}});
            }
            lap.push_back(std::move(j));
        }
        json in_degree = json::array();
        for (const CorrectedInDegree& c : l.in_degree) {
            json j = degrees_json(c.degrees);
            j["tau"] = c.tau;
            in_degree.push_back(std::move(j));
        }
        out["layers"].push_back(
            {{"layer", l.layer},
             {"faithful", {{"variant", "faithful"}, {"fiedler_notebook", fiedler}, {"laplacian_notebook", lap}}},
             {"corrected",
              {{"variant", "corrected"},
               {"weighted", spectrum_json(l.weighted, "algebraic_connectivity")},
               {"normalized", spectrum_json(l.normalized, "algebraic_connectivity")},
               {"in_degree", in_degree}}}});
    }
    return out;
}

json fiedler_correlations(const std::vector<SpectralResult>& samples) {
    SINKLAB_CHECK(!samples.empty(), "analysis", "fiedler_correlations: no samples");
    using Getter = std::optional<double> (*)(const FiedlerThreshold&);
    const std::pair<const char*, Getter> metrics[] = {
        {"star_likeness", [](const FiedlerThreshold& f) -> std::optional<double> { return f.star_likeness; }},
        {"degree_centralization", [](const FiedlerThreshold& f) { return f.degree_centralization; }},
        {"degree_variance", [](const FiedlerThreshold& f) { return f.degree_variance; }},
        {"connection_density", [](const FiedlerThreshold& f) { return f.connection_density; }},
    };
    // (metric, tau) -> per-layer r and p, for the "overall" means.
    std::map<std::pair<std::string, double>, std::pair<std::vector<double>, std::vector<double>>> overall;
    json layers = json::array();
    const SpectralResult& first = samples.front();
    for (size_t li = 0; li < first.layers.size(); ++li) {
        json thresholds = json::array();
        for (size_t ti = 0; ti < first.layers[li].fiedler.size(); ++ti) {
            const double tau = first.layers[li].fiedler[ti].tau;
            json entry = {{"tau", tau}};
            for (const auto& [name, get] : metrics) {
                std::vector<double> x, y;
                for (const SpectralResult& s : samples) {
                    SINKLAB_CHECK(li < s.layers.size() && ti < s.layers[li].fiedler.size(), "analysis",
                                  "fiedler_correlations: samples were analysed with different layers or thresholds");
                    const FiedlerThreshold& f = s.layers[li].fiedler[ti];
                    if (const std::optional<double> v = get(f)) {
                        x.push_back(f.fiedler_value);
                        y.push_back(*v);
                    }
                }
                const Correlation c = pearson(x, y);
                entry[name] = {{"r", json_number(c.r)}, {"p", json_number(c.p)}, {"n", x.size()}};
                auto& [rs, ps] = overall[{name, tau}];
                if (std::isfinite(c.r)) rs.push_back(c.r);
                if (std::isfinite(c.p)) ps.push_back(c.p);
            }
            thresholds.push_back(std::move(entry));
        }
        layers.push_back({{"layer", first.layers[li].layer}, {"thresholds", std::move(thresholds)}});
    }
    json overall_json = json::array();
    for (const FiedlerThreshold& f : first.layers.front().fiedler) {
        json entry = {{"tau", f.tau}};
        for (const auto& [name, get] : metrics) {
            const auto& [rs, ps] = overall[{name, f.tau}];
            entry[name] = {{"mean_r", json_number(mean(rs))}, {"mean_p", json_number(mean(ps))}, {"layers", rs.size()}};
        }
        overall_json.push_back(std::move(entry));
    }
    return {{"analysis", "fiedler_correlations"},
            {"variant", "faithful"},
            {"samples", samples.size()},
            {"layers", std::move(layers)},
            {"overall", std::move(overall_json)}};
}

}  // namespace sinklab::analysis
