#include "probe/probe_report.h"

#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"

namespace sinklab {

namespace {

nlohmann::json entry_json(const ActivationEntry& e) {
    return {{"sample", e.sample}, {"position", e.position}, {"dim", e.dim}, {"value", e.value}};
}

nlohmann::json layer_activations_json(int layer, const LayerActivations& a) {
    nlohmann::json top = nlohmann::json::array(), entries = nlohmann::json::array();
    for (const auto& e : a.top) top.push_back(entry_json(e));
    for (const auto& e : a.massive) entries.push_back(entry_json(e));
    nlohmann::json dims = nlohmann::json::object(), positions = nlohmann::json::object();
    for (const auto& [dim, count] : a.massive_dims) dims[std::to_string(dim)] = count;
    for (const auto& [position, count] : a.massive_positions) positions[std::to_string(position)] = count;
    return {{"layer", layer},        {"median", a.median}, {"top", top},
            {"top_to_median", a.top_to_median()}, {"count", a.massive_count}, {"entries", entries},
            {"dims", dims},          {"positions", positions}};
}

// Where each key's definition comes from (docs/definitions.md, which cites the papers).
nlohmann::json definitions(const ProbeResult& r) {
    nlohmann::json d = nlohmann::json::object();
    if (r.has(Metric::sink)) {
        const std::string alpha =
            r.alpha_convention == "bidirectional"
                ? "alpha_k^{l,h} = 1/T sum_{t=1..T} A^{l,h}_{t,k}: bidirectional attention, every query sees key k; "
                  "mean over samples (Gu et al. 2025's alpha over the queries that see k; docs/definitions.md)"
                : "alpha_k^{l,h} = 1/(T-k+1) sum_{t=k..T} A^{l,h}_{t,k}, mean over samples (Gu et al. 2025; "
                  "docs/definitions.md)";
        d["alpha_1"] = alpha;
        d["alpha_k"] = alpha;
        d["sink_k"] = "Sink_k^eps = 100 x share of (sample, layer, head) with alpha_k > eps (strict; Gu et al. 2025)";
        d["sink_k_per_layer"] = "Sink_k^eps of one layer: share of (sample, head) with alpha_k > eps, in percent";
        if (!r.special_tokens.empty())
            d["special_tokens"] = "alpha_k and Sink_k^eps at the position k of each special token the samples hold "
                                  "(a decoder's BOS; an encoder's [CLS] first and [SEP] last)";
        if (r.sink_star)
            d["sink_star"] = "Sink_*^eps: Sink of the slot column (kv_bias, k_bias, softmax1, score_bias), alpha_* the "
                             "mean slot weight over the queries (Gu et al.'s Sink_1*)";
        if (!r.layer_groups.empty())
            d["layer_groups"] = "the layers of each window (sliding: window keys, the query included; full: all "
                                "earlier keys): Sink_1 and Sink_* in percent over samples x the group's layers x "
                                "heads, alpha_1 and alpha_* the mean over the group's layers and heads";
    }
    if (r.has(Metric::entropy)) d["entropy"] = "-sum_j A_{t,j} ln A_{t,j} in nats, mean over queries t and samples";
    if (r.has(Metric::massive))
        d["massive_activations"] =
            "block outputs: entries with |h| > absolute and > relative x the median |h| of the sample's (T, C) hidden "
            "state (Sun et al. 2024); top-3 |h| over all samples; median averaged over samples";
    if (r.has(Metric::hidden_norms))
        d["hidden_norm_ratio"] = "||h_1|| / mean_{t>1} ||h_t|| at each block output, norms averaged over samples first "
                                 "(Gu et al. 2025, App. C.3)";
    if (r.has(Metric::value_drain)) {
        d["key_norm_ratio"] = "||k_1|| / mean_{j>1} ||k_j|| per kv head, keys after RoPE, norms averaged over samples";
        d["value_norm_ratio"] = "||v_1|| / mean_{j>1} ||v_j|| per kv head (value drain; docs/definitions.md)";
    }
    if (r.has(Metric::no_op))
        d["no_op"] = "the no-op reading (Barbero, Gu et al. 2025) per layer and head: sink_share = alpha_1 (or the "
                     "slot's alpha_* for designs with a slot, `sink`), output_ratio = mean over positions and samples "
                     "of ||o_t|| over the same mean of ||v_j|| of the head's values, o_t the head's output as the "
                     "output projection reads it (after the gate of gated designs)";
    if (r.has(Metric::geometry)) {
        d["cos_query_first_key"] = "mean over queries t of cos(q_t, k_1), after RoPE, mean over samples";
        d["cos_query_other_keys"] =
            r.alpha_convention == "bidirectional"
                ? "mean over all queries t of the mean over keys 1 < j <= T of cos(q_t, k_j), mean over samples"
                : "mean over queries t > 1 of the mean over keys 1 < j <= t of cos(q_t, k_j), mean over samples";
    }
    if (r.intervention) {
        const std::string loss =
            r.intervention->loss == "masked_lm"
                ? "masked-LM cross-entropy in nats over the masked positions of the natural samples (15% of each "
                  "sample's text tokens, seeded, replaced by the mask token)"
                : "mean next-token cross-entropy in nats over every position of the natural samples";
        if (r.intervention->mode == InterventionMode::sink)
            d["intervention"] =
                "a sink taken away (docs/probe.md): mask-first:K (no query after the first K keys sees them, rows "
                "renormalised), scale-first:F (the first key's weight times F, rows renormalised), replace-first:ID "
                "(another token at position 1), mask-slot (the slot column or sink token removed); " + loss +
                " without (loss_clean) and with (loss_intervened), and Sink_k (percent) of the edited model "
                "(sink_k_intervened)";
        else
            d["intervention"] = "Sun et al. 2024: dims of one block's output set to 0 (zero) or h[t, d] to its mean "
                                "over samples at position t (mean); " + loss +
                                ", without (loss_clean) and with (loss_intervened)";
    }
    return d;
}

}  // namespace

nlohmann::json probe_result_json(const ProbeResult& r) {
    nlohmann::json j = {{"schema", kProbeSchema},
                        {"layers", r.layers},
                        {"heads", r.heads},
                        {"kv_heads", r.kv_heads},
                        {"samples", r.samples},
                        {"seq_len", r.seq_len},
                        {"max_seq_len", r.max_seq_len},
                        {"beyond_max_seq_len", r.seq_len > r.max_seq_len},
                        {"positions", r.positions},
                        {"alpha_convention", r.alpha_convention},
                        {"attention_path", attention_kernel_name(r.kernel)},
                        {"seconds", r.seconds}};
    nlohmann::json metrics = nlohmann::json::array();
    for (Metric m : r.metrics) metrics.push_back(metric_name(m));
    j["metrics"] = metrics;
    j["definitions"] = definitions(r);
    if (r.has(Metric::sink)) {
        j["alpha_1"] = r.alpha[0];
        j["alpha_k"] = r.alpha;
        j["sink_k"] = r.sink_percent;
        j["sink_k_per_layer"] = r.sink_percent_per_layer;
        if (!r.special_tokens.empty()) {
            nlohmann::json specials = nlohmann::json::array();
            for (const SpecialTokenSink& s : r.special_tokens)
                specials.push_back({{"role", s.special.role},
                                    {"token", s.special.token.empty() ? nlohmann::json() : nlohmann::json(s.special.token)},
                                    {"id", s.special.id},
                                    {"position", s.special.position},
                                    {"sink_percent", s.sink_percent},
                                    {"sink_percent_per_layer", s.sink_percent_per_layer},
                                    {"alpha", s.alpha}});
            j["special_tokens"] = specials;
        }
        if (r.sink_star) {
            j["sink_star"] = *r.sink_star;
            j["sink_star_per_layer"] = r.sink_star_per_layer;
            j["alpha_star"] = r.alpha_star;
        }
        if (!r.layer_groups.empty()) {
            nlohmann::json groups = nlohmann::json::array();
            for (const LayerGroup& g : r.layer_groups) {
                nlohmann::json group = {{"attention", g.window > 0 ? "sliding" : "full"},
                                        {"window", g.window},
                                        {"layers", g.layers},
                                        {"sink_1", g.sink_1},
                                        {"alpha_1", g.alpha_1}};
                if (g.sink_star) {
                    group["sink_star"] = *g.sink_star;
                    group["alpha_star"] = *g.alpha_star;
                }
                groups.push_back(group);
            }
            j["layer_groups"] = groups;
        }
    }
    j["layer_windows"] = r.layer_windows;
    if (r.has(Metric::entropy)) j["entropy"] = r.entropy;
    if (r.has(Metric::massive)) {
        nlohmann::json layers = nlohmann::json::array();
        for (size_t l = 0; l < r.activations.size(); ++l)
            layers.push_back(layer_activations_json(static_cast<int>(l), r.activations[l]));
        j["massive_activations"] = {
            {"thresholds", {{"absolute", r.thresholds.absolute}, {"relative", r.thresholds.relative}}},
            {"layers", layers}};
    }
    if (r.has(Metric::hidden_norms)) j["hidden_norm_ratio"] = r.hidden_norm_ratio;
    if (r.has(Metric::value_drain)) {
        j["key_norm_ratio"] = r.key_norm_ratio;
        j["value_norm_ratio"] = r.value_norm_ratio;
    }
    if (r.has(Metric::geometry)) {
        j["cos_query_first_key"] = r.cos_query_first_key;
        j["cos_query_other_keys"] = r.cos_query_other_keys;
    }
    if (r.has(Metric::no_op))
        j["no_op"] = {{"sink", r.sink_share_of}, {"sink_share", r.sink_share}, {"output_ratio", r.head_output_ratio}};
    if (r.intervention) {
        const InterventionResult& i = *r.intervention;
        j["intervention"] = {{"mode", i.name},
                             {"loss", i.loss},
                             {"loss_clean", i.loss_clean},
                             {"loss_intervened", i.loss_intervened},
                             {"loss_change", i.loss_intervened - i.loss_clean}};
        if (i.mode == InterventionMode::sink) {
            j["intervention"]["sink_k_intervened"] = i.sink_percent_intervened;
            if (i.sink_star_intervened) j["intervention"]["sink_star_intervened"] = *i.sink_star_intervened;
        } else {
            j["intervention"]["layer"] = i.layer;
            j["intervention"]["dims"] = i.dims;
            j["intervention"]["dims_rule"] = i.dims_rule;
        }
    }
    return j;
}

std::string probe_table(const ProbeResult& r) {
    const bool sink = r.has(Metric::sink), massive = r.has(Metric::massive);
    const bool norms = r.has(Metric::hidden_norms), entropy = r.has(Metric::entropy), no_op = r.has(Metric::no_op);
    const bool windows = !r.layer_groups.empty(), slot = sink && r.sink_star.has_value();
    std::string out = "layer";
    if (windows) out += "  window";
    if (sink) out += "  Sink_1 %   alpha_1";
    if (slot) out += "  Sink_* %   alpha_*";
    if (massive) out += "   top |h|   median |h|  top/median  massive";
    if (norms) out += "  |h_1|/|h_t|";
    if (entropy) out += "  entropy";
    if (no_op) out += "  out/|v|";
    out += "\n";
    for (int l = 0; l < r.layers; ++l) {
        out += fmt::format("{:>5}", l);
        if (windows) out += r.layer_windows[l] > 0 ? fmt::format("  {:>6}", r.layer_windows[l]) : "    full";
        if (sink) {
            double alpha = 0.0;
            for (double a : r.alpha[0][l]) alpha += a;
            out += fmt::format("  {:>8.1f}  {:>8.4f}", r.sink_percent_per_layer[l][0], alpha / r.heads);
        }
        if (slot) {
            double alpha = 0.0;
            for (double a : r.alpha_star[l]) alpha += a;
            out += fmt::format("  {:>8.1f}  {:>8.4f}", r.sink_star_per_layer[l], alpha / r.heads);
        }
        if (massive) {
            const LayerActivations& a = r.activations[l];
            out += fmt::format("  {:>8.3g}  {:>11.3g}  {:>10.1f}  {:>7}", a.top.empty() ? 0.0 : std::abs(a.top[0].value),
                               a.median, a.top_to_median(), a.massive_count);
        }
        if (norms) out += fmt::format("  {:>11.3f}", r.hidden_norm_ratio[l]);
        if (entropy) {
            double e = 0.0;
            for (double x : r.entropy[l]) e += x;
            out += fmt::format("  {:>7.3f}", e / r.heads);
        }
        if (no_op) {
            double ratio = 0.0;
            for (double x : r.head_output_ratio[l]) ratio += x;
            out += fmt::format("  {:>7.3f}", ratio / r.heads);
        }
        out += "\n";
    }
    if (sink) {
        out += fmt::format("Sink_k (eps, percent over samples x layers x heads), k = 1..{}:", r.positions);
        for (double s : r.sink_percent) out += fmt::format(" {:.1f}", s);
        out += "\n";
        if (r.sink_star) out += fmt::format("Sink_* (the slot column, percent): {:.1f}\n", *r.sink_star);
        for (const LayerGroup& g : r.layer_groups) {
            out += fmt::format("{} layers ({}): Sink_1 {:.1f} %, alpha_1 {:.4f}",
                               g.window > 0 ? fmt::format("sliding (window {})", g.window) : std::string("full"),
                               fmt::join(g.layers, ","), g.sink_1, g.alpha_1);
            if (g.sink_star) out += fmt::format("; Sink_* {:.1f} %, alpha_* {:.4f}", *g.sink_star, *g.alpha_star);
            out += "\n";
        }
        if (r.alpha_convention == "bidirectional")
            out += "bidirectional attention: alpha_k averages over all T queries\n";
        for (const SpecialTokenSink& s : r.special_tokens)
            out += fmt::format("special token {} ({}, id {}) at position {}: Sink {:.1f}%\n",
                               s.special.token.empty() ? s.special.role : s.special.token, s.special.role, s.special.id,
                               s.special.position, s.sink_percent);
    }
    if (r.intervention && r.intervention->mode == InterventionMode::sink) {
        const InterventionResult& i = *r.intervention;
        out += fmt::format("intervention: {}: {} {:.4f} -> {:.4f} nats/token ({:+.4f}); Sink_1 {:.1f}% -> {:.1f}%",
                           i.name, i.loss == "masked_lm" ? "masked-LM loss" : "loss", i.loss_clean, i.loss_intervened, i.loss_intervened - i.loss_clean,
                           r.sink_percent.at(0), i.sink_percent_intervened.at(0));
        if (i.sink_percent_intervened.size() > 1)
            out += fmt::format(", Sink_2 {:.1f}% -> {:.1f}%", r.sink_percent[1], i.sink_percent_intervened[1]);
        if (r.sink_star && i.sink_star_intervened)
            out += fmt::format(", Sink_* {:.1f}% -> {:.1f}%", *r.sink_star, *i.sink_star_intervened);
        out += "\n";
    } else if (r.intervention) {
        const InterventionResult& i = *r.intervention;
        const std::string dims = fmt::format("{}", fmt::join(i.dims, ","));
        out += fmt::format("intervention: {} dims {} ({}) at layer {}: {} loss {:.4f} -> {:.4f} nats/token ({:+.4f})\n",
                           i.name, dims, i.dims_rule, i.layer, i.loss == "masked_lm" ? "masked-LM" : "next-token",
                           i.loss_clean, i.loss_intervened, i.loss_intervened - i.loss_clean);
    }
    return out;
}

double uniform_alpha1(int T) {
    double harmonic = 0.0;
    for (int t = 1; t <= T; ++t) harmonic += 1.0 / t;
    return T > 0 ? harmonic / T : 0.0;
}

std::vector<SinkHead> sink_heads(const ProbeResult& r, double eps) {
    std::vector<SinkHead> heads;
    if (r.alpha.empty()) return heads;
    for (size_t l = 0; l < r.alpha[0].size(); ++l)
        for (size_t h = 0; h < r.alpha[0][l].size(); ++h)
            if (r.alpha[0][l][h] > eps) heads.push_back({static_cast<int>(l), static_cast<int>(h), r.alpha[0][l][h]});
    return heads;
}

std::string sink_finding(const ProbeResult& r, double eps) {
    SINKLAB_CHECK(r.has(Metric::sink) && !r.alpha.empty(), "probe", "a sink finding needs the sink metric");
    // uniform attention's alpha_1: H_T / T over causal rows, 1/T when every query sees every key
    const double uniform = r.alpha_convention == "bidirectional" ? 1.0 / r.seq_len : uniform_alpha1(r.seq_len);
    const std::vector<SinkHead> heads = sink_heads(r, eps);
    const int total = r.layers * r.heads;
    if (!heads.empty()) {
        std::string where;
        for (size_t i = 0; i < heads.size(); ++i) {
            const SinkHead& s = heads[i];
            where += fmt::format("{}layer {} head {} ({:.3g})", i == 0 ? "" : i + 1 == heads.size() ? " and " : ", ",
                                 s.layer, s.head, s.alpha);
        }
        return fmt::format("a first-token sink in {} of {} heads: {}, against {:.3g} for uniform attention over {} "
                           "tokens (Sink_1 = {:.3g}%)",
                           heads.size(), total, where, uniform, r.seq_len, r.sink_percent[0]);
    }
    double largest = -1.0;
    int at_layer = 0, at_head = 0;
    for (size_t l = 0; l < r.alpha[0].size(); ++l)
        for (size_t h = 0; h < r.alpha[0][l].size(); ++h)
            if (r.alpha[0][l][h] > largest) largest = r.alpha[0][l][h], at_layer = static_cast<int>(l), at_head = static_cast<int>(h);
    return fmt::format("no sink formed: no head's alpha_1 exceeds {:.3g} (Sink_1 = {:.3g}%); the largest, {:.3g} in "
                       "layer {} head {}, is {:.3g} times the {:.3g} of uniform attention over {} tokens",
                       eps, r.sink_percent[0], largest, at_layer, at_head, largest / uniform, uniform, r.seq_len);
}

}  // namespace sinklab
