// The only file of sinklab that includes GUDHI (it compiles slowly).
#include "analysis/topology.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <iostream>  // GUDHI 3.7.1's Persistent_cohomology.h uses std::cout without including it

#include <gudhi/Persistent_cohomology.h>
#include <gudhi/Simplex_tree.h>

#include "analysis/results.h"
#include "analysis/stats.h"
#include "core/error.h"

namespace sinklab::analysis {

using nlohmann::json;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

using SimplexTree = Gudhi::Simplex_tree<Gudhi::Simplex_tree_options_full_featured>;
using Cohomology = Gudhi::persistent_cohomology::Persistent_cohomology<SimplexTree, Gudhi::persistent_cohomology::Field_Zp>;

struct Edge {
    int i, j;  // i < j
    double value;
};

void sort_bars(std::vector<Bar>& bars) {
    std::sort(bars.begin(), bars.end(),
              [](const Bar& a, const Bar& b) { return a.birth != b.birth ? a.birth < b.birth : a.death < b.death; });
}

// Persistence over Z/2 of the flag complex (up to triangles) on n vertices born at 0.
Barcode flag_complex_barcode(int n, const std::vector<Edge>& edges) {
    SimplexTree st;
    for (int v = 0; v < n; ++v) st.insert_simplex(std::vector<int>{v}, 0.0);
    for (const Edge& e : edges) st.insert_simplex(std::vector<int>{e.i, e.j}, e.value);
    st.expansion(2);
    Cohomology pc(st);
    pc.init_coefficients(2);
    pc.compute_persistent_cohomology(0.0);  // drops bars of length <= 0
    Barcode out;
    for (const auto& [birth, death] : pc.intervals_in_dimension(0)) out.h0.push_back({birth, death});
    for (const auto& [birth, death] : pc.intervals_in_dimension(1)) out.h1.push_back({birth, death});
    sort_bars(out.h0);
    sort_bars(out.h1);
    return out;
}

// ripser.cpp's union_find (path compression, union by rank, elder-rule births).
class UnionFind {
public:
    explicit UnionFind(int n) : parent_(n), rank_(n, 0), birth_(n, 0.0f) {
        for (int i = 0; i < n; ++i) parent_[i] = i;
    }
    void set_birth(int i, float v) { birth_[i] = v; }
    float birth(int i) const { return birth_[i]; }
    int find(int x) {
        int y = x, z = parent_[y];
        while (z != y) {
            y = z;
            z = parent_[y];
        }
        y = parent_[x];
        while (z != y) {
            parent_[x] = z;
            x = y;
            y = parent_[x];
        }
        return z;
    }
    void link(int x, int y) {
        x = find(x);
        y = find(y);
        if (x == y) return;
        if (rank_[x] > rank_[y]) {
            parent_[y] = x;
            birth_[x] = std::min(birth_[x], birth_[y]);
        } else {
            parent_[x] = y;
            birth_[y] = std::min(birth_[x], birth_[y]);
            if (rank_[x] == rank_[y]) ++rank_[y];
        }
    }

private:
    std::vector<int> parent_;
    std::vector<unsigned char> rank_;
    std::vector<float> birth_;
};

struct PersistenceStats {
    std::optional<double> avg, max;  // over finite bars; empty when there is none
    double total = 0.0;              // sum of finite persistences
    int finite = 0, essential = 0;
};

PersistenceStats persistence_stats(const std::vector<Bar>& bars) {
    PersistenceStats s;
    double max = 0.0;
    for (const Bar& b : bars) {
        if (std::isinf(b.death)) {
            ++s.essential;
            continue;
        }
        const double p = b.death - b.birth;
        s.total += p;
        max = s.finite == 0 ? p : std::max(max, p);
        ++s.finite;
    }
    if (s.finite > 0) {
        s.avg = s.total / s.finite;
        s.max = max;
    }
    return s;
}

json diagram_json(const std::vector<Bar>& bars) {
    json out = json::array();
    for (const Bar& b : bars) out.push_back({b.birth, json_number(b.death)});
    return out;
}

// As topology.ipynb: the mean/max persistence keys exist only when there are finite bars.
void put_persistence(json& j, const Barcode& code) {
    const PersistenceStats s0 = persistence_stats(code.h0), s1 = persistence_stats(code.h1);
    if (s0.avg) {
        j["dim0_avg_persistence"] = *s0.avg;
        j["dim0_max_persistence"] = *s0.max;
    }
    if (s1.avg) {
        j["dim1_avg_persistence"] = *s1.avg;
        j["dim1_max_persistence"] = *s1.max;
    }
}

Eigen::MatrixXd take(const Eigen::MatrixXd& m, const std::vector<int>& idx) {
    const int n = static_cast<int>(idx.size());
    Eigen::MatrixXd out(n, n);
    for (int a = 0; a < n; ++a)
        for (int b = 0; b < n; ++b) out(a, b) = m(idx[a], idx[b]);
    return out;
}

HeadStats head_stats(int head, const Eigen::MatrixXd& a) {
    const Eigen::MatrixXd f = a.cast<float>().cast<double>();  // the notebook's float32 values
    HeadStats s{head, f.mean(), f.maxCoeff(), 0.0, 0.0, 0, 0.0};
    s.std_attention = std::sqrt((f.array() - s.avg_attention).square().mean());
    s.entropy = -(f.array() * (f.array() + 1e-10).log() / std::log(2.0)).sum();
    const Eigen::VectorXd column_means = f.colwise().mean().transpose();
    Eigen::Index top = 0;
    s.top_strength = column_means.maxCoeff(&top);  // first maximum, as np.argmax
    s.top_token = static_cast<int>(top);
    return s;
}

}  // namespace

Barcode ripser_coo_barcode(const Eigen::MatrixXf& distance) {
    const int n = static_cast<int>(distance.rows());
    SINKLAB_CHECK(distance.cols() == n && n > 0, "analysis", "ripser_coo_barcode: distance matrix is {}x{}",
                  distance.rows(), distance.cols());
    // COO entries of the upper triangle (row < col); exact zeros are not stored, hence no edge.
    std::vector<Edge> edges;
    for (int i = 0; i < n; ++i)
        for (int j = i + 1; j < n; ++j)
            if (distance(i, j) != 0.0f) edges.push_back({i, j, static_cast<double>(distance(i, j))});

    // ripser's compute_dim_0_pairs. An edge {j < i} has index C(i, 2) + j; edges are sorted by
    // increasing value, ties by decreasing index.
    struct IndexedEdge {
        float value;
        long long index;
        int lo, hi;
    };
    std::vector<IndexedEdge> order;
    for (const Edge& e : edges)
        order.push_back({static_cast<float>(e.value), static_cast<long long>(e.j) * (e.j - 1) / 2 + e.i, e.i, e.j});
    std::sort(order.begin(), order.end(), [](const IndexedEdge& a, const IndexedEdge& b) {
        return a.value != b.value ? a.value < b.value : a.index > b.index;
    });
    UnionFind dset(n);
    for (int i = 0; i < n; ++i) dset.set_birth(i, distance(i, i));
    Barcode out;
    for (const IndexedEdge& e : order) {
        const int u = dset.find(e.lo), v = dset.find(e.hi);
        if (u == v) continue;
        if (e.value != 0.0f) {
            const float birth = std::max(dset.birth(u), dset.birth(v));  // elder rule: the younger dies
            if (e.value > birth) out.h0.push_back({birth, e.value});
        }
        dset.link(u, v);
    }
    for (int i = 0; i < n; ++i)
        if (dset.find(i) == i) out.h0.push_back({dset.birth(i), inf});
    sort_bars(out.h0);
    out.h1 = flag_complex_barcode(n, edges).h1;
    return out;
}

int persistent_bars(const std::vector<Bar>& bars, double eps) {
    int n = 0;
    for (const Bar& b : bars) n += b.death - b.birth > eps;
    return n;
}

Barcode rips_barcode(const Eigen::MatrixXd& distance) {
    const int n = static_cast<int>(distance.rows());
    SINKLAB_CHECK(distance.cols() == n && n > 0, "analysis", "rips_barcode: distance matrix is {}x{}", distance.rows(),
                  distance.cols());
    std::vector<Edge> edges;
    for (int i = 0; i < n; ++i) {
        SINKLAB_CHECK(distance(i, i) == 0.0, "analysis", "rips_barcode: diagonal entry {} is {}, expected 0", i,
                      distance(i, i));
        for (int j = i + 1; j < n; ++j) {
            SINKLAB_CHECK(distance(i, j) == distance(j, i), "analysis",
                          "rips_barcode: distance is not symmetric at ({}, {})", i, j);
            edges.push_back({i, j, distance(i, j)});
        }
    }
    return flag_complex_barcode(n, edges);
}

std::vector<int> faithful_topology_layers(int num_layers) {
    SINKLAB_CHECK(num_layers >= 1, "analysis", "faithful_topology_layers: {} layers", num_layers);
    const int step = std::max(1, num_layers / 4);
    std::vector<int> layers = {0, step, 2 * step, num_layers - 1};
    for (int& l : layers) l = std::min(l, num_layers - 1);
    std::sort(layers.begin(), layers.end());
    layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
    return layers;
}

TopologyResult analyze_topology(const AttentionSample& sample, const TopologyOptions& options) {
    validate_sample(sample);
    SINKLAB_CHECK(options.max_points >= 1 && options.corrected_max_points >= 1, "analysis",
                  "topology: max_points must be >= 1");
    const int T = sample.num_tokens();
    TopologyResult result{options.persistence_eps, options.betti_scales, options.symmetrize_max, {}};
    for (int l : select_layers(options.layers, sample.num_layers())) {
        const Eigen::MatrixXd& a = sample.attention[l];
        TopologyLayer layer{};
        layer.layer = l;

        // Faithful: float32 head average, D = 1 - A, downsampled, ripser.py.
        const Eigen::MatrixXf af = a.cast<float>();
        const Eigen::MatrixXd ad = af.cast<double>();
        layer.attention_mean = ad.mean();
        layer.attention_max = ad.maxCoeff();
        layer.attention_min = ad.minCoeff();
        layer.attention_std = std::sqrt((ad.array() - layer.attention_mean).square().mean());
        for (double tau : options.density_thresholds) {
            const int connections = static_cast<int>((af.array() > static_cast<float>(tau)).count());
            layer.densities.push_back({tau, connections / (double(T) * T), connections});
        }
        layer.faithful_points = linspace_indices(T, options.max_points);
        const Eigen::MatrixXf df = (Eigen::MatrixXf::Ones(T, T) - af);
        const int n = static_cast<int>(layer.faithful_points.size());
        Eigen::MatrixXf kept(n, n);
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j) kept(i, j) = df(layer.faithful_points[i], layer.faithful_points[j]);
        layer.faithful = ripser_coo_barcode(kept);
        if (sample.has_heads())
            for (size_t h = 0; h < sample.heads[l].size(); ++h)
                layer.heads.push_back(head_stats(static_cast<int>(h), sample.heads[l][h]));

        // Corrected: symmetrised distance, Rips up to dimension 2.
        const Eigen::MatrixXd sym = options.symmetrize_max ? a.cwiseMax(a.transpose()).eval()
                                                            : (0.5 * (a + a.transpose())).eval();
        Eigen::MatrixXd d = Eigen::MatrixXd::Ones(T, T) - sym;
        d.diagonal().setZero();
        layer.corrected_points = linspace_indices(T, options.corrected_max_points);
        layer.corrected = rips_barcode(take(d, layer.corrected_points));
        result.layers.push_back(std::move(layer));
    }
    return result;
}

json TopologyResult::to_json() const {
    json out = {{"analysis", "topology"}, {"layers", json::array()}};
    for (const TopologyLayer& l : layers) {
        json faithful = {{"variant", "faithful"},
                         {"points", l.faithful_points.size()},
                         {"betti_numbers", {l.faithful.h0.size(), l.faithful.h1.size()}},
                         {"attention_mean", l.attention_mean},
                         {"attention_max", l.attention_max},
                         {"attention_min", l.attention_min},
                         {"attention_std", l.attention_std}};
        put_persistence(faithful, l.faithful);
        json densities = json::array();
        for (const DensityAt& d : l.densities)
            densities.push_back({{"tau", d.tau}, {"connection_density", d.density}, {"total_connections", d.connections}});
        faithful["topology"] = std::move(densities);
        if (!l.heads.empty()) {
            json heads = json::array();
            for (const HeadStats& h : l.heads)
                heads.push_back({{"head", h.head}, {"avg_attention", h.avg_attention}, {"max_attention", h.max_attention},
                                 {"std_attention", h.std_attention}, {"entropy", h.entropy},
                                 {"top_token", h.top_token}, {"top_strength", h.top_strength}});
            faithful["heads"] = std::move(heads);
        }
        faithful["diagrams"] = {diagram_json(l.faithful.h0), diagram_json(l.faithful.h1)};

        const PersistenceStats s0 = persistence_stats(l.corrected.h0), s1 = persistence_stats(l.corrected.h1);
        const auto above = [&](const std::vector<Bar>& bars) {
            return std::count_if(bars.begin(), bars.end(), [&](const Bar& b) { return b.death - b.birth > persistence_eps; });
        };
        const auto alive = [](const std::vector<Bar>& bars, double r) {
            return std::count_if(bars.begin(), bars.end(), [&](const Bar& b) { return b.birth <= r && r < b.death; });
        };
        json scales = json::array();
        for (double r : betti_scales) scales.push_back({{"r", r}, {"betti", {alive(l.corrected.h0, r), alive(l.corrected.h1, r)}}});
        json corrected = {{"variant", "corrected"},
                          {"points", l.corrected_points.size()},
                          {"distance", symmetrize_max ? "1 - max(A, A^T)" : "1 - (A + A^T) / 2"},
                          {"bars", {l.corrected.h0.size(), l.corrected.h1.size()}},
                          {"eps", persistence_eps},
                          {"bars_above_eps", {above(l.corrected.h0), above(l.corrected.h1)}},
                          {"essential", {s0.essential, s1.essential}},
                          {"total_persistence", {s0.total, s1.total}},
                          {"betti_at_scale", std::move(scales)}};
        put_persistence(corrected, l.corrected);
        corrected["diagrams"] = {diagram_json(l.corrected.h0), diagram_json(l.corrected.h1)};
        out["layers"].push_back({{"layer", l.layer}, {"faithful", std::move(faithful)}, {"corrected", std::move(corrected)}});
    }
    return out;
}

json topology_summary(const std::vector<TopologyResult>& samples, int min_samples, double min_consistency) {
    SINKLAB_CHECK(!samples.empty(), "analysis", "topology_summary: no samples");
    // Specialised heads: (layer, head) -> top token counts.
    std::map<std::pair<int, int>, std::map<int, int>> focus;
    // Per-layer series for the layer tests.
    std::map<int, std::map<std::string, std::vector<double>>> series;
    for (const TopologyResult& s : samples)
        for (const TopologyLayer& l : s.layers) {
            for (const HeadStats& h : l.heads) ++focus[{l.layer, h.head}][h.top_token];
            auto& m = series[l.layer];
            m["betti0"].push_back(static_cast<double>(l.faithful.h0.size()));
            m["betti1"].push_back(static_cast<double>(l.faithful.h1.size()));
            m["mean_attention"].push_back(l.attention_mean);
            m["max_attention"].push_back(l.attention_max);
            if (const std::optional<double> p = persistence_stats(l.faithful.h0).avg) m["persistence_dim0"].push_back(*p);
        }

    json specialized = json::array();
    for (const auto& [key, counts] : focus) {
        int total = 0, best = 0, token = 0;
        for (const auto& [t, c] : counts) {
            total += c;
            if (c > best) {
                best = c;
                token = t;
            }
        }
        const double consistency = static_cast<double>(best) / total;
        if (total >= min_samples && consistency >= min_consistency)
            specialized.push_back({{"layer", key.first}, {"head", key.second}, {"top_token", token},
                                   {"consistency", consistency}, {"samples", total}});
    }
    std::stable_sort(specialized.begin(), specialized.end(),
                     [](const json& a, const json& b) { return a["consistency"].get<double>() > b["consistency"].get<double>(); });

    json tests = json::array();
    for (auto i = series.begin(); i != series.end(); ++i)
        for (auto j = std::next(i); j != series.end(); ++j)
            for (const char* metric : {"betti0", "betti1", "mean_attention", "max_attention", "persistence_dim0"}) {
                const std::vector<double>& a = i->second[metric];
                const std::vector<double>& b = j->second[metric];
                if (a.empty() || b.empty()) continue;
                const TTest t = welch_t_test(a, b);
                tests.push_back({{"layer_i", i->first}, {"layer_j", j->first}, {"metric", metric},
                                 {"t", json_number(t.t)}, {"p", json_number(t.p)},
                                 {"significant", std::isfinite(t.p) && t.p < 0.05},
                                 {"mean_i", mean(a)}, {"mean_j", mean(b)}});
            }
    return {{"analysis", "topology_summary"},
            {"variant", "faithful"},
            {"samples", samples.size()},
            {"specialized_heads", std::move(specialized)},
            {"layer_tests", std::move(tests)}};
}

}  // namespace sinklab::analysis
