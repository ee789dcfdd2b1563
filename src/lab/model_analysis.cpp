#include "lab/model_analysis.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "analysis/attention_graph.h"
#include "analysis/diffusion.h"
#include "analysis/frames.h"
#include "analysis/random_matrix.h"
#include "analysis/results.h"
#include "analysis/sample.h"
#include "analysis/spectral.h"
#include "analysis/topology.h"
#include "analysis/value_space.h"
#include "core/error.h"
#include "core/text.h"
#include "core/threads.h"
#include "lab/attention_capture.h"
#include "model/transformer.h"
#include "probe/probe.h"
#include "probe/probe_model.h"

namespace sinklab {

namespace {

namespace an = sinklab::analysis;
using nlohmann::json;

// printf-style text appended to `out`: the tables' fixed-width columns, as printf lays them out.
__attribute__((format(printf, 2, 3))) void appendf(std::string& out, const char* format, ...) {
    va_list args, again;
    va_start(args, format);
    va_copy(again, args);
    const int n = std::vsnprintf(nullptr, 0, format, args);
    va_end(args);
    if (n > 0) {
        std::string text(static_cast<size_t>(n) + 1, '\0');
        std::vsnprintf(text.data(), text.size(), format, again);
        out.append(text.data(), static_cast<size_t>(n));
    }
    va_end(again);
}

// Means over samples of the numbers the terminal table shows, per layer (non-finite values skipped).
struct LayerStats {
    std::map<std::string, std::pair<double, int>> values;
    void add(const std::string& key, double v) {
        if (!std::isfinite(v)) return;
        auto& [sum, n] = values[key];
        sum += v;
        ++n;
    }
    std::string cell(const std::string& key, int width, const char* format = "{:.3f}") const {
        auto it = values.find(key);
        if (it == values.end() || it->second.second == 0) return fmt::format("{:>{}}", "-", width);
        return fmt::format("{:>{}}", fmt::format(fmt::runtime(format), it->second.first / it->second.second), width);
    }
    double mean(const std::string& key) const {
        auto it = values.find(key);
        return it == values.end() || it->second.second == 0 ? NAN : it->second.first / it->second.second;
    }
};

double power_mass(const an::DiffusionView& v, int k, bool excess = false) {
    for (const auto& p : v.power_mass)
        if (p.k == k) return excess ? p.excess : p.mass;
    return NAN;
}

struct TargetResult {
    json j;
    std::vector<LayerStats> stats;
    std::vector<std::string> special_names;  // the marked special tokens, in order
    std::optional<an::FrameResult> frames;
    std::vector<an::RawRowSums> raw_row_sums;  // the design's row sums before the graph's proxy
    std::vector<double> node0_column;          // per layer, mean over samples
    int graph_nodes = 0;
};

// Everything `analyses` asks for, over the samples, for one model.
TargetResult analyze_model(Transformer& model, const ProbeSamples& samples, const AnalysisRequest& request) {
    const std::set<std::string>& chosen = request.analyses;
    const ModelConfig& c = model.config();
    const int L = c.n_layers, T = samples.T;
    an::SpectralOptions spectral_options;
    if (!request.thresholds.empty())
        spectral_options.fiedler_thresholds = spectral_options.laplacian_thresholds = request.thresholds;
    const bool want_value = chosen.count("value") > 0;
    // Per-head maps too (one sample at a time): diffusion's per-head s_k, topology's head
    // statistics and value space's KL read them, so every analysis sees the same sample.
    const bool keep_heads = true;

    std::map<std::string, std::vector<json>> per_sample;
    std::vector<an::SpectralResult> spectral_results;
    std::vector<an::TopologyResult> topology_results;
    std::vector<an::ValueSpaceResult> value_results;
    std::vector<LayerStats> stats(L);
    // Frames: each sample's votes and evidence added as it comes, so that no sample's maps are kept.
    std::optional<an::FrameAccumulator> frames;
    if (chosen.count("frames")) frames.emplace(samples.N);
    // The samples' special tokens (an encoder's [CLS] and [SEP]) as graph nodes: the diffusion of a
    // bidirectional layer reports their stationary mass. A sink token or a slot (node 0) before the
    // text shifts every node by one.
    std::vector<an::MarkedToken> specials;
    for (const SpecialPosition& special : samples.specials)
        specials.push_back({special.token.empty() ? special.role : special.token, special.position - 1});

    std::vector<an::RawRowSums> raw_row_sums;
    std::vector<double> node0_column(L, 0.0);
    int graph_nodes = 0;
    for (int n = 0; n < samples.N; ++n) {
        AttentionGraphCapture capture(c, keep_heads, /*keep_hidden=*/true);
        ForwardOptions forward;
        forward.training = false;
        forward.observer = &capture;
        forward.logits = false;
        // the graphs are the attention weights themselves, which only the materialised kernel
        // keeps (auto takes the blockwise kernel from T = 64, analyze's default --seq-len)
        forward.attention_kernel = AttentionKernel::materialised;
        model.forward(samples.tokens.data() + static_cast<size_t>(n) * T, nullptr, 1, T, forward);
        accumulate_raw_row_sums(raw_row_sums, capture.graph.raw_row_sums());
        graph_nodes = capture.graph.graph_nodes();
        an::AttentionSample s = capture.graph.take_sample();
        for (an::MarkedToken special : specials) {
            special.position += graph_nodes - T;  // a slot or a sink token is node 0
            s.special_tokens.push_back(std::move(special));
        }
        const std::vector<double> node0 = an::node0_column_means(s);
        for (int l = 0; l < L; ++l) node0_column[l] += node0[l] / samples.N;

        if (chosen.count("diffusion")) {
            const an::DiffusionResult r = an::analyze_diffusion(s);
            for (const auto& l : r.layers) {
                LayerStats& st = stats[l.layer];
                for (int k : {1, 4, 16}) {
                    st.add(fmt::format("s{}_f", k), power_mass(l.all_rows, k));
                    st.add(fmt::format("s{}_c", k), power_mass(l.from_row1, k));
                }
                st.add("d4_f", power_mass(l.all_rows, 4, true));
                st.add("d4_c", power_mass(l.from_row1, 4, true));
                for (const auto& lv : l.all_rows.levels)
                    if (lv.level == 0.5 && lv.k) st.add("kstar_f", *lv.k);
                for (const auto& lv : l.from_row1.levels)
                    if (lv.level == 0.5 && lv.k) st.add("kstar_c", *lv.k);
                if (l.mixing_rate) st.add("mix", *l.mixing_rate);
                if (l.stationary) {
                    st.add("pi_uniform", l.stationary->uniform);
                    for (const auto& [token, mass] : l.stationary->special_tokens) st.add("pi:" + token.name, mass);
                }
            }
            per_sample["diffusion"].push_back(r.to_json());
        }
        if (chosen.count("spectral")) {
            an::SpectralResult r = an::analyze_spectral(s, spectral_options);
            for (const auto& l : r.layers) {
                if (!l.fiedler.empty()) stats[l.layer].add("fiedler_f", l.fiedler.front().fiedler_value);
                if (l.weighted.eigenvalues.size() > 1) stats[l.layer].add("fiedler_c", l.weighted.eigenvalues[1]);
            }
            per_sample["spectral"].push_back(r.to_json());
            spectral_results.push_back(std::move(r));
        }
        if (chosen.count("topology")) {
            an::TopologyResult r = an::analyze_topology(s);
            for (const auto& l : r.layers) {
                stats[l.layer].add("b0_f", static_cast<double>(l.faithful.h0.size()));
                stats[l.layer].add("b1_f", static_cast<double>(l.faithful.h1.size()));
                stats[l.layer].add("b0_c", an::persistent_bars(l.corrected.h0, r.persistence_eps));
                stats[l.layer].add("b1_c", an::persistent_bars(l.corrected.h1, r.persistence_eps));
            }
            per_sample["topology"].push_back(r.to_json());
            topology_results.push_back(std::move(r));
        }
        if (chosen.count("rmt")) {
            const an::RandomMatrixResult r = an::analyze_random_matrix(s);
            for (const auto& l : r.layers) {
                stats[l.layer].add("gap_f", l.faithful.spectral_gap);
                if (l.corrected.mp) stats[l.layer].add("ks_c", l.corrected.mp->ks_distance);
                stats[l.layer].add("sigma2_c", l.corrected.sigma2);
            }
            per_sample["rmt"].push_back(r.to_json());
        }
        if (want_value) {
            an::ValueSpaceResult r = an::analyze_value_space(s);
            for (const auto& l : r.layers)
                if (l.hidden) {
                    stats[l.layer].add("gsa_f", l.hidden->gsa_faithful);
                    stats[l.layer].add("gsa_c", l.hidden->gsa_corrected);
                }
            per_sample["value"].push_back(r.to_json());
            value_results.push_back(std::move(r));
        }
        if (frames) {
            an::AttentionSample only_attention;
            only_attention.attention = s.attention;
            frames->add(only_attention);
        }
    }

    TargetResult out;
    for (const an::MarkedToken& token : specials) out.special_names.push_back(token.name);
    out.j["analyses"] = json::object();
    for (auto& [name, list] : per_sample) {
        json agg = an::aggregate_layers(list);
        if (name == "spectral") agg["fiedler_correlations"] = an::fiedler_correlations(spectral_results);
        if (name == "topology") agg["summary"] = an::topology_summary(topology_results);
        if (name == "value") agg["summary"] = an::value_space_summary(value_results);
        out.j["analyses"][name] = std::move(agg);
    }
    if (frames) {
        out.frames = frames->result();
        out.j["frames"] = out.frames->to_json();
    }
    out.stats = std::move(stats);
    out.raw_row_sums = std::move(raw_row_sums);
    out.node0_column = std::move(node0_column);
    out.graph_nodes = graph_nodes;
    return out;
}

std::string summary_table(const TargetResult& r, const std::set<std::string>& chosen) {
    std::string out;
    // Each column is "faithful/corrected" where the library has both.
    appendf(out, "per layer (means over samples; f = faithful, c = corrected)\n");
    appendf(out, "%5s", "layer");
    if (chosen.count("diffusion"))
        appendf(out, " %13s %13s %13s %15s %9s %7s", "s_1 f/c", "s_4 f/c", "s_16 f/c", "D_4 f/c", "k*.5 f/c", "mix c");
    if (chosen.count("spectral")) appendf(out, " %15s", "Fiedler f/c");
    if (chosen.count("topology")) appendf(out, " %11s %11s", "b0 f/c", "b1 f/c");
    if (chosen.count("rmt")) appendf(out, " %8s %8s", "gap f", "KS c");
    if (chosen.count("value")) appendf(out, " %13s", "GSA f/c");
    appendf(out, "\n");
    for (size_t l = 0; l < r.stats.size(); ++l) {
        const LayerStats& s = r.stats[l];
        appendf(out, "%5zu", l);
        if (chosen.count("diffusion"))
            appendf(out, " %6s/%6s %6s/%6s %6s/%6s %7s/%7s %4s/%4s %7s", s.cell("s1_f", 6).c_str(), s.cell("s1_c", 6).c_str(),
                    s.cell("s4_f", 6).c_str(), s.cell("s4_c", 6).c_str(), s.cell("s16_f", 6).c_str(),
                    s.cell("s16_c", 6).c_str(), s.cell("d4_f", 7, "{:+.3f}").c_str(),
                    s.cell("d4_c", 7, "{:+.3f}").c_str(), s.cell("kstar_f", 4, "{:.1f}").c_str(),
                    s.cell("kstar_c", 4, "{:.1f}").c_str(), s.cell("mix", 7).c_str());
        if (chosen.count("spectral"))
            appendf(out, " %7s/%7s", s.cell("fiedler_f", 7).c_str(), s.cell("fiedler_c", 7).c_str());
        if (chosen.count("topology"))
            appendf(out, " %5s/%5s %5s/%5s", s.cell("b0_f", 5, "{:.1f}").c_str(), s.cell("b0_c", 5, "{:.1f}").c_str(),
                    s.cell("b1_f", 5, "{:.1f}").c_str(), s.cell("b1_c", 5, "{:.1f}").c_str());
        if (chosen.count("rmt")) appendf(out, " %8s %8s", s.cell("gap_f", 8, "{:.3g}").c_str(), s.cell("ks_c", 8).c_str());
        if (chosen.count("value"))
            appendf(out, " %6s/%6s", s.cell("gsa_f", 6).c_str(), s.cell("gsa_c", 6).c_str());
        appendf(out, "\n");
    }
    bool bidirectional = false;
    for (const LayerStats& s : r.stats) bidirectional = bidirectional || std::isfinite(s.mean("pi_uniform"));
    if (chosen.count("diffusion") && !bidirectional)
        appendf(out, "s_k: mass of A^k on token 0; D_4 = s_4 - s_4(uniform causal, closed form); k*.5: smallest k with "
                "s_k >= 0.5 (mean over samples reaching it); mix: max_{i>=1} A_ii\n");
    if (chosen.count("diffusion") && bidirectional) {
        appendf(out, "s_k: mass of A^k on token 0; D_4 = s_4 - 1/T (uniform bidirectional attention); k*.5: smallest k "
                "with s_k >= 0.5; mix: |lambda_2|, the rate of A^k -> 1 pi^T\n");
        appendf(out, "the attention graph is not a DAG (bidirectional attention): A^k tends to 1 pi^T, pi its stationary "
                "distribution; pi's mass on the special tokens (uniform: %.4f)\n",
                r.stats.empty() ? NAN : r.stats.front().mean("pi_uniform"));
        for (size_t l = 0; l < r.stats.size(); ++l) {
            appendf(out, "  layer %zu:", l);
            for (const std::string& name : r.special_names)
                appendf(out, "  %s %s", name.c_str(), r.stats[l].cell("pi:" + name, 1, "{:.4f}").c_str());
            appendf(out, "\n");
        }
    }
    if (chosen.count("spectral"))
        appendf(out, "Fiedler: faithful at the first threshold (binarised graph), corrected = lambda_2 of the weighted "
                "Laplacian of (A + A^T)/2\n");
    if (r.frames) {
        const an::FrameResult& f = *r.frames;
        appendf(out, "frame (corrected; operational rule, see docs/analysis.md): %s  [causal %s; layers centralized "
                "%.2f, distributed %.2f, bidirectional %.2f]\n",
                an::frame_name(f.frame), f.causal ? "yes" : "no", f.layer_fractions[0], f.layer_fractions[1],
                f.layer_fractions[2]);
        for (const auto& lf : f.layers)
            appendf(out, "  layer %d: %-13s votes c/d/b %.2f/%.2f/%.2f, |R| %.2f, R={0} %.2f, {0,T-1} in R %.2f, "
                    "column-0 share %.3f, in-degree Gini %.3f\n",
                    lf.layer, an::frame_name(lf.frame), lf.votes[0], lf.votes[1], lf.votes[2], lf.reference_count,
                    lf.token0_only_fraction, lf.dual_anchor_fraction, lf.column0_share, lf.in_degree_gini);
    }
    return out;
}

}  // namespace

const std::vector<std::string>& analysis_names() {
    static const std::vector<std::string> names = {"diffusion", "spectral", "topology", "rmt", "value", "frames"};
    return names;
}

std::set<std::string> parse_analyses(const std::string& text) {
    const std::vector<std::string>& known = analysis_names();
    if (text == "all") return {known.begin(), known.end()};
    std::set<std::string> chosen;
    for (const std::string& item : split_list(text)) {
        SINKLAB_CHECK(std::find(known.begin(), known.end(), item) != known.end(), "analyze",
                      "--analyses: unknown analysis '{}'; valid: all, {}", item, fmt::join(known, ", "));
        chosen.insert(item);
    }
    return chosen;
}

nlohmann::json run_analysis(const AnalysisRequest& a, const std::function<void(const std::string&)>& print) {
    const InputSpec& input = a.input;
    const BosMode bos_mode = a.bos;
    const std::set<std::string>& chosen = a.analyses;
    set_threads(a.threads);
    for (double t : a.thresholds)
        SINKLAB_CHECK(t > 0.0 && t < 1.0, "analyze", "--threshold {}: each threshold must lie in (0, 1)", t);
    SINKLAB_CHECK(!a.model.empty() || !a.checkpoints.empty(), "analyze", "give --model PATH or --checkpoints DIR...");
    SINKLAB_CHECK(a.samples >= 1, "analyze", "--samples {}: need at least 1", a.samples);

    std::vector<std::string> targets;
    if (!a.model.empty()) targets.push_back(a.model);
    for (const auto& d : a.checkpoints) targets.push_back(d);

    // Architectures must agree before any work starts.
    if (targets.size() > 1) {
        std::optional<ModelConfig> first;
        for (const auto& t : targets) {
            const ProbeModel pm = load_probe_model(t);
            const ModelConfig& c = pm.model->config();
            if (!first) {
                first = c;
                continue;
            }
            SINKLAB_CHECK(c.n_layers == first->n_layers && c.n_heads == first->n_heads && c.d_model == first->d_model,
                          "analyze",
                          "--checkpoints: '{}' ({} layers, {} heads, d_model {}) and '{}' ({} layers, {} heads, "
                          "d_model {}) have different architectures; pass checkpoints of one training run",
                          targets.front(), first->n_layers, first->n_heads, first->d_model, t, c.n_layers, c.n_heads,
                          c.d_model);
        }
    }

    json out = {{"model", a.model.empty() ? json(nullptr) : json(a.model)},
                {"input", input.name()},
                {"params",
                 {{"seq_len", a.seq_len},
                  {"samples", a.samples},
                  {"bos", bos_mode_name(bos_mode)},
                  {"seed", a.seed},
                  {"analyses", std::vector<std::string>(chosen.begin(), chosen.end())},
                  {"thresholds", a.thresholds},
                  {"checkpoints", a.checkpoints},
                  {"threads", a.threads}}}};
    const NamedText natural = natural_text(input, "analyze");  // read once for every target
    json tracked = json::array();
    std::vector<std::pair<std::string, std::vector<LayerStats>>> track_rows;
    for (size_t ti = 0; ti < targets.size(); ++ti) {
        const std::string& path = targets[ti];
        ProbeModel pm = load_probe_model(path, a.tokenizer);
        Transformer& model = *pm.model;
        const ModelConfig& c = model.config();
        const ProbeSamples samples = probe_samples(pm, input, natural, bos_mode, a.seq_len, a.samples, a.seed, "analyze");
        // Each sample's forward keeps its (T, T) attention maps.
        require_probe_memory(c, samples.N, samples.T, 1, AttentionKernel::materialised, "analyze");
        std::string text_out;
        appendf(text_out, "analyze %s (%s %s, %d layers, %d heads)\n%s\n", path.c_str(), pm.info.source.c_str(),
                pm.info.architecture.c_str(), c.n_layers, c.n_heads, samples.description.c_str());
        if (const std::string note = beyond_max_seq_len_note(c, a.seq_len); !note.empty())
            appendf(text_out, "%s\n", note.c_str());
        out["params"]["max_seq_len"] = c.max_seq_len;
        out["params"]["beyond_max_seq_len"] = a.seq_len > c.max_seq_len;
        // Slot designs and sink_token models have one node more than the input: node 0 is the slot
        // or the prepended token. Designs whose rows do not sum to 1 are read through the probe's proxy.
        const bool sink_token = c.attention.uses_sink_token(), slot = c.attention.has_slot();
        const an::RowProxy proxy = graph_proxy(c.attention);
        const int graph_nodes = a.seq_len + (sink_token || slot ? 1 : 0);
        if (sink_token)
            appendf(text_out, "the model prepends its learned sink token: each attention graph has T + 1 = %d nodes, node 0 "
                    "is the sink token (token 0 below)\n",
                    graph_nodes);
        if (slot)
            appendf(text_out, "the design (%s) has a slot column every query sees: each attention graph has T + 1 = %d nodes, "
                    "node 0 is the slot (token 0 below)\n",
                    c.attention.name().c_str(), graph_nodes);
        if (proxy != an::RowProxy::none)
            appendf(text_out, "the design's rows do not sum to 1: the analyses read each row w as %s (the probe's proxy); "
                    "the raw row sums are printed below and written to the JSON\n",
                    proxy == an::RowProxy::ratio ? "w / sum w" : "|w| / sum |w|");
        print(text_out);
        text_out.clear();
        TargetResult r = analyze_model(model, samples, a);
        text_out += summary_table(r, chosen);
        if (proxy != an::RowProxy::none)
            for (size_t l = 0; l < r.raw_row_sums.size(); ++l) {
                const an::RawRowSums& rs = r.raw_row_sums[l];
                appendf(text_out, "  layer %zu raw row sums: min %.4g, mean %.4g, max %.4g; rows with no weight %ld of %ld\n", l,
                        rs.min, rs.mean(), rs.max, rs.empty_rows, rs.rows);
            }
        print(text_out);
        json graph = an::graph_reading_json(r.graph_nodes, slot, sink_token, proxy, r.raw_row_sums);
        graph["node0_column"] = r.node0_column;
        if (ti == 0 && !a.model.empty()) {
            out["analyses"] = r.j["analyses"];
            if (r.j.contains("frames")) out["frames"] = r.j["frames"];
            out["model_info"] = {{"source", pm.info.source}, {"architecture", pm.info.architecture}, {"config", c.to_json()}};
            out["input_description"] = samples.description;
            out["graph_nodes"] = graph_nodes;
            out["sink_token"] = sink_token;
            out["slot"] = slot;
            out["graph"] = std::move(graph);
        } else {
            json entry = {{"path", path}, {"analyses", r.j["analyses"]}, {"graph", std::move(graph)}};
            if (r.j.contains("frames")) entry["frames"] = r.j["frames"];
            tracked.push_back(std::move(entry));
            track_rows.emplace_back(path, std::move(r.stats));
        }
    }
    if (!a.checkpoints.empty()) {
        out["checkpoints"] = std::move(tracked);
        if (chosen.count("rmt")) {
            std::string text_out;
            appendf(text_out, "random-matrix statistics across checkpoints (faithful spectral gap / corrected KS to MP)\n");
            for (const auto& [path, stats] : track_rows) {
                appendf(text_out, "  %s:", path.c_str());
                for (size_t l = 0; l < stats.size(); ++l)
                    appendf(text_out, "  L%zu %s/%s", l, stats[l].cell("gap_f", 1, "{:.3g}").c_str(),
                            stats[l].cell("ks_c", 1).c_str());
                appendf(text_out, "\n");
            }
            print(text_out);
        }
    }
    return out;
}

}  // namespace sinklab
