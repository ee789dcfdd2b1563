#include "lab/run_report.h"
#include "lab/stream_run.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "io/corpus.h"
#include "probe/probe_model.h"
#include "probe/probe_report.h"
#include "report/vega.h"
#include "lab/sink_function_figures.h"

namespace sinklab {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string cell(double v) { return std::isfinite(v) ? fmt::format("{}", v) : ""; }
std::string cell(const std::optional<double>& v) { return v ? cell(*v) : ""; }

const InputProbe* find_probe(const ReportEntry& e, const std::string& input) {
    if (!e.measured) return nullptr;
    for (const InputProbe& p : e.measured->probes)
        if (p.input == input) return &p;
    return nullptr;
}

// The probe the per-model figures and columns use: natural text when measured, else the first input.
const InputProbe* reference_probe(const ModelMeasurement& m) {
    for (const InputProbe& p : m.probes)
        if (p.input == "natural") return &p;
    return m.probes.empty() ? nullptr : &m.probes.front();
}

double sink1(const InputProbe* p) { return p && p->result.has(Metric::sink) ? p->result.sink_percent[0] : kNaN; }

// Mean over heads of alpha_1, per layer.
std::vector<double> alpha1_per_layer(const ProbeResult& r) {
    std::vector<double> out;
    for (const auto& heads : r.alpha[0]) {
        double sum = 0.0;
        for (double a : heads) sum += a;
        out.push_back(heads.empty() ? kNaN : sum / heads.size());
    }
    return out;
}

// (largest mean-over-heads alpha_1, its layer)
std::pair<double, int> strongest_alpha1(const ProbeResult& r) {
    const auto per_layer = alpha1_per_layer(r);
    const auto it = std::max_element(per_layer.begin(), per_layer.end());
    return it == per_layer.end() ? std::pair{kNaN, -1} : std::pair{*it, static_cast<int>(it - per_layer.begin())};
}

double largest_massive_ratio(const ProbeResult& r) {
    double ratio = kNaN;
    for (const auto& layer : r.activations)
        if (!layer.top.empty() && layer.median > 0) ratio = std::isnan(ratio) ? layer.top_to_median() : std::max(ratio, layer.top_to_median());
    return ratio;
}

// Mean over layers of s_k - s_k(uniform) at the largest k.
double mean_power_excess(const DiffusionCurves& d) {
    if (d.mass.empty() || d.powers.empty()) return kNaN;
    double sum = 0.0;
    for (const auto& layer : d.mass) sum += layer.back() - d.baseline.back();
    return sum / d.mass.size();
}

std::optional<double> final_number(const ReportEntry& e, const char* key) {
    if (!e.source.log || !e.source.log->final_evaluation) return std::nullopt;
    const json& f = *e.source.log->final_evaluation;
    return f.contains(key) && f[key].is_number() ? std::optional<double>(f[key].get<double>()) : std::nullopt;
}

Table comparison_table(const std::vector<ReportEntry>& entries, const std::vector<std::string>& inputs) {
    std::vector<std::string> header = {"run", "design", "params", "layers", "heads", "steps", "val_loss"};
    for (const auto& in : inputs) header.push_back("sink1_" + in);
    for (const std::string h : {"alpha1_max", "alpha1_max_layer", "massive_top_to_median", "power_excess_k_max"})
        header.push_back(h);
    Table table(header);
    for (const ReportEntry& e : entries) {
        std::vector<std::string> row = {e.source.name};
        if (e.measured) {
            row.insert(row.end(), {e.measured->design, std::to_string(e.measured->params),
                                   std::to_string(e.measured->layers), std::to_string(e.measured->heads)});
        } else {
            row.insert(row.end(), {"", "", "", ""});
        }
        const std::optional<double> steps = final_number(e, "step");
        row.push_back(steps ? fmt::format("{}", static_cast<long>(*steps)) : "");
        row.push_back(cell(final_number(e, "val_loss")));
        for (const auto& in : inputs) row.push_back(cell(sink1(find_probe(e, in))));
        const InputProbe* reference = e.measured ? reference_probe(*e.measured) : nullptr;
        if (reference && reference->result.has(Metric::sink)) {
            const auto [alpha, layer] = strongest_alpha1(reference->result);
            row.push_back(cell(alpha));
            row.push_back(std::to_string(layer));
        } else {
            row.insert(row.end(), {"", ""});
        }
        row.push_back(reference && reference->result.has(Metric::massive) ? cell(largest_massive_ratio(reference->result)) : "");
        row.push_back(e.measured && e.measured->diffusion ? cell(mean_power_excess(*e.measured->diffusion)) : "");
        table.add_row(std::move(row));
    }
    return table;
}

std::vector<std::string> layer_labels(int layers) {
    std::vector<std::string> labels;
    for (int l = 0; l < layers; ++l) labels.push_back(std::to_string(l));
    return labels;
}

// alpha_1 of uniform attention over T tokens: H_T/T with a causal mask, 1/T without (every query sees every key).
double uniform_alpha1_for(int T, bool causal) { return causal ? uniform_alpha1(T) : (T > 0 ? 1.0 / T : kNaN); }

std::string uniform_label(int T, bool causal = true) {
    return causal ? fmt::format("uniform attention, H_T/T = {:.3g}", uniform_alpha1(T))
                  : fmt::format("uniform bidirectional attention, 1/T = {:.3g}", uniform_alpha1_for(T, false));
}

double mean_of(const std::vector<double>& v) {
    double sum = 0.0;
    for (double x : v) sum += x;
    return v.empty() ? kNaN : sum / v.size();
}

// Captions say what the figure shows and what its numbers are, never a fixed verdict.
std::string loss_caption(const std::vector<ReportEntry>& entries) {
    std::string runs;
    for (const ReportEntry& e : entries) {
        if (!e.source.log || e.source.log->losses.empty()) continue;
        const TrainingLog& log = *e.source.log;
        runs += fmt::format("{}{} from {:.3g} to {:.3g}", runs.empty() ? "" : "; ", e.source.name, log.losses.front(),
                            log.val_losses.empty() ? log.losses.back() : log.val_losses.back());
    }
    return "Training loss (solid) and validation loss (dashed) against optimizer steps, first training loss to last "
           "validation loss: " + runs + ".";
}

std::string training_sink_caption(const std::vector<Series>& sink) {
    std::string runs;
    for (const Series& s : sink) {
        double peak = 0.0, at = 0.0;
        for (size_t i = 0; i < s.y.size(); ++i)
            if (std::isfinite(s.y[i]) && s.y[i] > peak) peak = s.y[i], at = s.x[i];
        const double last = s.y.empty() ? kNaN : s.y.back();
        runs += fmt::format("{}{}: {}", runs.empty() ? "" : "; ", s.name,
                            peak > 0 ? fmt::format("largest {:.3g}% at step {:.0f}, last {:.3g}%", peak, at, last)
                                     : std::string("0% at every evaluation"));
    }
    return "Sink_1, the share of layer-heads whose mean attention to token 1 exceeds 0.3 on validation windows of 64 "
           "tokens, at each evaluation: " + runs + ".";
}

std::string training_alpha_caption(const std::vector<Series>& alpha) {
    std::string runs;
    for (const Series& s : alpha)
        if (!s.y.empty() && std::isfinite(s.y.back()))
            runs += fmt::format("{}{} ends at {:.3g} ({:.3g} times uniform)", runs.empty() ? "" : "; ", s.name, s.y.back(),
                                s.y.back() / uniform_alpha1(64));
    return fmt::format("The largest per-layer mean attention to token 1 at each evaluation (the same windows), against "
                       "the {:.3g} of uniform attention over 64 tokens (dashed): {}.",
                       uniform_alpha1(64), runs);
}

std::string alpha_caption(const ModelMeasurement& m, int T) {
    std::string inputs;
    for (const InputProbe& p : m.probes) {
        if (!p.result.has(Metric::sink)) continue;
        const auto [alpha, layer] = strongest_alpha1(p.result);
        inputs += fmt::format("{}{}: largest {:.3g} in layer {} ({:.3g} times uniform)", inputs.empty() ? "" : "; ",
                              p.input, alpha, layer, alpha / uniform_alpha1_for(T, m.causal));
    }
    if (!m.causal)
        return fmt::format("Mean attention that all T queries put on token 1 (bidirectional attention), per layer and "
                           "input kind, against uniform attention, 1/T = {:.3g} at T = {} (dashed): {}.",
                           uniform_alpha1_for(T, false), T, inputs);
    return fmt::format("Mean attention that the queries put on token 1, per layer and input kind, against uniform "
                       "causal attention, H_T/T = {:.3g} at T = {} (dashed): {}.",
                       uniform_alpha1(T), T, inputs);
}

std::string sink_layer_caption(const ModelMeasurement& m) {
    std::string inputs;
    for (const InputProbe& p : m.probes) {
        if (!p.result.has(Metric::sink)) continue;
        std::string layers;
        for (size_t l = 0; l < p.result.sink_percent_per_layer.size(); ++l)
            if (p.result.sink_percent_per_layer[l][0] > 0)
                layers += fmt::format("{}layer {} {:.3g}%", layers.empty() ? "" : ", ", l, p.result.sink_percent_per_layer[l][0]);
        inputs += fmt::format("{}{}: {}", inputs.empty() ? "" : "; ", p.input, layers.empty() ? "0% in every layer" : layers);
    }
    return "Share of (sample, head) pairs of each layer whose alpha_1 exceeds the threshold: " + inputs + ".";
}

std::string sink_k_caption(const ModelMeasurement& m) {
    std::string inputs;
    for (const InputProbe& p : m.probes) {
        if (!p.result.has(Metric::sink) || p.result.sink_percent.empty()) continue;
        double later = 0.0;
        for (size_t k = 1; k < p.result.sink_percent.size(); ++k) later = std::max(later, p.result.sink_percent[k]);
        inputs += fmt::format("{}{}: Sink_1 {:.3g}%, at most {:.3g}% for k = 2..{}", inputs.empty() ? "" : "; ", p.input,
                              p.result.sink_percent[0], later, p.result.sink_percent.size());
    }
    return "Sink_k for the first positions k, per input kind: a first-token sink is a peak at k = 1 alone; " + inputs + ".";
}

std::string massive_caption(const ProbeResult& r) {
    double ratio = 0.0;
    int at = 0;
    long count = 0;
    for (size_t l = 0; l < r.activations.size(); ++l) {
        count += r.activations[l].massive_count;
        if (r.activations[l].median > 0 && r.activations[l].top_to_median() > ratio)
            ratio = r.activations[l].top_to_median(), at = static_cast<int>(l);
    }
    return fmt::format("The three largest |h| of the residual stream at each block's output and the median |h| (log "
                       "scale): the largest ratio of top to median is {:.3g}, in layer {}; {} entries cross Sun et "
                       "al.'s thresholds (|h| > {:g} and > {:g} x the median).",
                       ratio, at, count, r.thresholds.absolute, r.thresholds.relative);
}

std::string drain_caption(const Series& values) {
    double low = kNaN, high = kNaN;
    for (double v : values.y)
        if (std::isfinite(v)) low = std::isnan(low) ? v : std::min(low, v), high = std::isnan(high) ? v : std::max(high, v);
    return fmt::format("Norm of token 1's value (and key) vector over the mean norm of the others, per layer, mean over "
                       "heads (1: equal norms, dashed); a value drain is a ratio well below 1. Values: {:.3g} to {:.3g}.",
                       low, high);
}

std::string geometry_caption(const Series& first, const Series& others) {
    int layer = 0;
    double gap = -2.0;
    for (size_t l = 0; l < first.y.size(); ++l)
        if (std::isfinite(first.y[l]) && first.y[l] - others.y[l] > gap) gap = first.y[l] - others.y[l], layer = static_cast<int>(l);
    return fmt::format("Mean cosine between each query and the first key, and between each query and the later keys, "
                       "per layer (mean over heads): the largest gap is {:.3g}, in layer {}.",
                       gap, layer);
}

std::string diffusion_caption(const DiffusionCurves& d, int T, bool causal) {
    double excess = -2.0;
    int layer = 0;
    for (size_t l = 0; l < d.mass.size(); ++l)
        if (d.mass[l].front() - d.baseline.front() > excess) excess = d.mass[l].front() - d.baseline.front(), layer = static_cast<int>(l);
    return fmt::format("Mass that the k-th power of each layer's head-averaged attention puts on token 1 (mean of {} "
                       "samples of {} tokens) against uniform {} attention (dashed): at k = {} the largest excess "
                       "over uniform is {:+.3g}, in layer {}.",
                       d.samples, T, causal ? "causal" : "bidirectional (1/T; the graph is no DAG)", d.powers.front(),
                       excess, layer);
}

// The graph analyses (corrected variants) per layer, with the frame label, as one table.
void add_graph_table(ReportPage& page, const GraphAnalyses& g, const std::optional<DiffusionCurves>& diffusion) {
    Table table({"layer", "frame", "s_1 - uniform", "Fiedler value", "H0 bars", "H1 bars", "KS to Marchenko-Pastur",
                 "mixing rate"});
    int best_fiedler = 0;
    for (size_t l = 0; l < g.fiedler.size(); ++l) {
        if (g.fiedler[l] > g.fiedler[best_fiedler]) best_fiedler = static_cast<int>(l);
        table.add_row({std::to_string(l), g.frames ? analysis::frame_name(g.frames->layers[l].frame) : "",
                       diffusion ? cell(diffusion->mass[l].front() - diffusion->baseline.front()) : "",
                       cell(g.fiedler[l]), cell(g.h0_bars[l]), cell(g.h1_bars[l]), cell(g.mp_ks[l]),
                       cell(g.mixing_rate[l])});
    }
    std::string frames;
    if (g.frames)
        frames = fmt::format("the model's reference frame is {} (layers centralized {:.3g}, distributed {:.3g}, "
                             "bidirectional {:.3g}); ",
                             analysis::frame_name(g.frames->frame), g.frames->layer_fractions[0],
                             g.frames->layer_fractions[1], g.frames->layer_fractions[2]);
    page.table(table, fmt::format("Graph analyses of the head-averaged attention, corrected variants, mean of {} "
                                  "samples (docs/analysis.md; `sinklab analyze` gives the faithful ones too): {}the "
                                  "largest Fiedler value (algebraic connectivity of (A + A^T)/2) is {:.3g}, in layer {}.",
                                  g.samples, frames, g.fiedler.empty() ? kNaN : g.fiedler[best_fiedler], best_fiedler));
}

bool measure_spectrum_over_training(const MeasureOptions& o) { return o.analysis_samples > 0; }

// mp_ks of each model `source` saved; a saved model that cannot be measured becomes a note and no
// point. The model measure_model already analysed (`measured`, the run's checkpoint/) keeps its
// graph's values: the same samples give the same numbers, so it is not loaded again. nullopt when
// fewer than two points remain.
std::optional<SpectrumOverTraining> spectrum_over_training(ReportSource& source, const MeasureOptions& options,
                                                           const std::optional<GraphAnalyses>& measured,
                                                           const std::function<void(long)>& on_model) {
    SpectrumOverTraining s;
    for (const SavedModel& saved : source.saved) {
        try {
            const std::vector<double> ks = saved.model == source.model && measured
                                               ? measured->mp_ks
                                               : measure_mp_ks(saved.model, options);
            if (s.mp_ks.empty()) s.mp_ks.resize(ks.size());
            SINKLAB_CHECK(ks.size() == s.mp_ks.size(), "report", "{} layers, where the run's other saved models have {}",
                          ks.size(), s.mp_ks.size());
            s.steps.push_back(static_cast<double>(saved.step));
            for (size_t l = 0; l < ks.size(); ++l) s.mp_ks[l].push_back(ks[l]);
        } catch (const Error& e) {
            source.notes.push_back(fmt::format("{}: spectrum not measured: {}", saved.model.string(), e.what()));
        }
        on_model(saved.step);
    }
    if (s.steps.size() < 2) return std::nullopt;
    s.samples = options.analysis_samples;
    return s;
}

// The saved models' KS distances as curves, one per layer.
void add_spectrum_figure(ReportPage& page, const SpectrumOverTraining& s) {
    std::vector<Series> series;
    int moved_layer = 0;
    double moved = -1.0;
    for (size_t l = 0; l < s.mp_ks.size(); ++l) {
        series.push_back({fmt::format("layer {}", l), s.steps, s.mp_ks[l]});
        const double change = std::abs(s.mp_ks[l].back() - s.mp_ks[l].front());
        if (std::isfinite(change) && change > moved) moved = change, moved_layer = static_cast<int>(l);
    }
    const std::vector<double>& ks = s.mp_ks[moved_layer];
    page.vega_figure(
        vega_line_chart(series, {.title = "Attention spectrum against Marchenko-Pastur over training", .x_label = "step",
                                 .y_label = "KS distance to Marchenko-Pastur", .y_min = 0.0, .y_max = 1.0}),
        moved < 0 ? fmt::format("KS distance between the spectrum of each layer's centred head-averaged attention and "
                                "the Marchenko-Pastur law (corrected variant, docs/analysis.md; 0: a random bulk) at "
                                "each model the run saved: no layer has a value.")
                  : fmt::format("KS distance between the spectrum of each layer's centred head-averaged attention and "
                                "the Marchenko-Pastur law (corrected variant, docs/analysis.md; 0: a random bulk), mean of "
                                "{} samples, at each of the {} models the run saved (steps {:.0f} to {:.0f}): layer {} "
                                "changed most, by {:.3g}, from {:.3g} to {:.3g}.",
                                s.samples, s.steps.size(), s.steps.front(), s.steps.back(), moved_layer, moved,
                                ks.front(), ks.back()));
}

void add_training_section(ReportPage& page, const std::vector<ReportEntry>& entries) {
    std::vector<Series> loss, sink, alpha;
    for (const ReportEntry& e : entries) {
        if (!e.source.log) continue;
        const TrainingLog& log = *e.source.log;
        if (!log.steps.empty()) loss.push_back({e.source.name, log.steps, log.losses});
        if (!log.eval_steps.empty()) {
            loss.push_back({e.source.name + " (validation)", log.eval_steps, log.val_losses, true});
            sink.push_back({e.source.name, log.eval_steps, log.sink1});
            Series largest{e.source.name, log.eval_steps, {}};
            for (const auto& per_layer : log.alpha1_per_layer)
                largest.y.push_back(per_layer.empty() ? kNaN : *std::max_element(per_layer.begin(), per_layer.end()));
            alpha.push_back(std::move(largest));
        }
    }
    page.section("Training");
    if (loss.empty() && sink.empty()) {
        page.paragraph("No training log with steps was found, so there are no training curves.");
        return;
    }
    if (!loss.empty())
        page.vega_figure(vega_line_chart(loss, {.title = "Loss during training", .x_label = "step",
                                                .y_label = "cross-entropy (nats/token)"}),
                         loss_caption(entries));
    if (!sink.empty())
        page.vega_figure(vega_line_chart(sink, {.title = "Sink_1 during training", .x_label = "step",
                                                .y_label = "Sink_1 (%)", .y_min = 0.0, .y_max = 100.0}),
                         training_sink_caption(sink));
    if (!alpha.empty())
        page.vega_figure(vega_line_chart(alpha, {.title = "Largest per-layer alpha_1 during training",
                                                 .x_label = "step", .y_label = "alpha_1 (mean over heads)",
                                                 .rules = {{uniform_alpha1(64), uniform_label(64)}}}),
                         training_alpha_caption(alpha));
}

// Long-stream perplexity per KV-cache policy (lab/stream_run.h).
void add_stream_section(ReportPage& page, const StreamResults& stream) {
    const StreamFigure f = stream_figure(stream.json);
    page.section("Streaming: " + stream.file.filename().string())
        .vega_figure(vega_line_chart(f.curves, {.title = f.title, .x_label = f.x_label, .y_label = f.y_label}),
                     f.caption)
        .table(f.table, "Each policy's perplexity over the whole stream and over its last sample, its speed, the "
                        "KV cache's bytes and the process's peak resident memory (sinklab stream).");
}

void add_model_section(ReportPage& page, const ReportEntry& e) {
    const ModelMeasurement& m = *e.measured;
    page.section(e.source.name);
    page.paragraph(fmt::format("{} ({} {}), attention design {}, {} parameters, {} layers x {} heads, vocabulary {}.",
                               e.source.model.string(), m.source, m.architecture, m.design, m.params, m.layers,
                               m.heads, m.vocab));
    for (const InputProbe& p : m.probes) page.paragraph(fmt::format("Input {}: {}.", p.input, p.description));
    std::vector<BarSeries> alpha, sink;
    for (const InputProbe& p : m.probes) {
        if (!p.result.has(Metric::sink)) continue;
        alpha.push_back({p.input, alpha1_per_layer(p.result)});
        std::vector<double> per_layer;
        for (const auto& k : p.result.sink_percent_per_layer) per_layer.push_back(k[0]);
        sink.push_back({p.input, per_layer});
    }
    const int T = m.probes.empty() ? 0 : m.probes.front().result.seq_len;
    const std::vector<std::string> layers = layer_labels(m.layers);
    if (!alpha.empty()) {
        const ReferenceLine uniform{uniform_alpha1_for(T, m.causal), uniform_label(T, m.causal)};
        page.vega_figure(vega_bar_chart(layers, alpha, {.title = "alpha_1 per layer (mean over heads)",
                                                        .x_label = "layer", .y_label = "alpha_1", .rules = {uniform}}),
                         alpha_caption(m, T));
        page.vega_figure(vega_bar_chart(layers, sink, {.title = "Sink_1 per layer", .x_label = "layer",
                                                       .y_label = "Sink_1 (%)", .y_min = 0.0, .y_max = 100.0}),
                         sink_layer_caption(m));
        std::vector<Series> by_k;
        for (const InputProbe& p : m.probes) {
            if (!p.result.has(Metric::sink)) continue;
            Series s{p.input, {}, p.result.sink_percent};
            for (size_t k = 1; k <= s.y.size(); ++k) s.x.push_back(static_cast<double>(k));
            by_k.push_back(std::move(s));
        }
        page.vega_figure(vega_line_chart(by_k, {.title = "Sink_k against the position k", .x_label = "position k",
                                                .y_label = "Sink_k (%)", .y_min = 0.0, .y_max = 100.0}),
                         sink_k_caption(m));
    }
    if (const InputProbe* reference = reference_probe(m); reference && reference->result.has(Metric::massive)) {
        const InputProbe& p = *reference;
        Series top[3], median{"median |h|", {}, {}, true};
        for (int i = 0; i < 3; ++i) top[i].name = fmt::format("top-{} |h|", i + 1);
        for (int l = 0; l < static_cast<int>(p.result.activations.size()); ++l) {
            const LayerActivations& a = p.result.activations[l];
            for (int i = 0; i < 3; ++i) {
                top[i].x.push_back(l);
                top[i].y.push_back(i < static_cast<int>(a.top.size()) ? std::abs(a.top[i].value) : kNaN);
            }
            median.x.push_back(l);
            median.y.push_back(a.median);
        }
        page.vega_figure(vega_line_chart({top[0], top[1], top[2], median},
                                         {.title = fmt::format("Massive activations ({} input)", p.input),
                                          .x_label = "layer", .y_label = "|h| at the block output", .log_y = true}),
                         massive_caption(p.result));
    }
    if (const InputProbe* reference = reference_probe(m);
        reference && reference->result.has(Metric::value_drain) && reference->result.has(Metric::geometry)) {
        const ProbeResult& r = reference->result;
        Series values{"||v_1|| / mean ||v_j||", {}, {}}, keys{"||k_1|| / mean ||k_j||", {}, {}};
        Series first{"cos(q_t, k_1)", {}, {}}, others{"cos(q_t, k_j), j > 1", {}, {}};
        for (int l = 0; l < r.layers; ++l) {
            values.x.push_back(l), keys.x.push_back(l), first.x.push_back(l), others.x.push_back(l);
            values.y.push_back(mean_of(r.value_norm_ratio[l]));
            keys.y.push_back(mean_of(r.key_norm_ratio[l]));
            first.y.push_back(mean_of(r.cos_query_first_key[l]));
            others.y.push_back(mean_of(r.cos_query_other_keys[l]));
        }
        page.vega_figure(vega_line_chart({values, keys}, {.title = fmt::format("Value drain ({} input)", reference->input),
                                                          .x_label = "layer", .y_label = "norm of token 1 / mean of the others",
                                                          .rules = {{1.0, "equal norms"}}}),
                         drain_caption(values));
        page.vega_figure(vega_line_chart({first, others}, {.title = fmt::format("Query-key geometry ({} input)", reference->input),
                                                           .x_label = "layer", .y_label = "mean cosine"}),
                         geometry_caption(first, others));
    }
    if (const InputProbe* reference = reference_probe(m); reference && reference->result.has(Metric::no_op))
        add_no_op_figure(page, reference->result, reference->input);
    if (m.over_mixing) add_over_mixing_figures(page, *m.over_mixing);
    if (m.diffusion) {
        const DiffusionCurves& d = *m.diffusion;
        std::vector<Series> series;
        std::vector<double> ks(d.powers.begin(), d.powers.end());
        for (size_t l = 0; l < d.mass.size(); ++l) series.push_back({fmt::format("layer {}", l), ks, d.mass[l]});
        series.push_back({m.causal ? "uniform causal" : "uniform bidirectional", ks, d.baseline, true});
        page.vega_figure(vega_line_chart(series, {.title = "Power sink mass s_k", .x_label = "k (power of the attention matrix)",
                                                  .y_label = "s_k: mass on token 1", .y_min = 0.0, .y_max = 1.0}),
                         diffusion_caption(d, m.maps ? m.maps->seq_len : T, m.causal));
    }
    if (m.graph) add_graph_table(page, *m.graph, m.diffusion);
    if (e.spectrum) add_spectrum_figure(page, *e.spectrum);
    if (m.maps && !m.maps->layers.empty()) {
        const AttentionMaps& maps = *m.maps;
        const bool heads = !maps.layers.front().heads.empty();
        std::string caption = fmt::format(
            "Head-averaged attention of each layer on one {} sample of {} tokens (rows queries, columns keys, log "
            "colour scale, grey masked){}{}; a bright first column is the sink.",
            maps.input, maps.seq_len,
            maps.pool > 1 ? fmt::format(", pooled: each pixel is the mean of {} x {} entries", maps.pool, maps.pool) : "",
            heads ? "; click a layer for its heads" : "");
        HeatmapFigure axes;
        axes.rows = axes.cols = maps.seq_len;
        axes.scale = {ScaleKind::log, maps.vmin, maps.vmax, maps.vmin};
        page.heatmap_grid(maps.layers, caption, axes);
    }
}

json entry_json(const ReportEntry& e) {
    json j = {{"name", e.source.name}, {"path", e.source.path.string()}, {"notes", e.source.notes}};
    if (!e.source.model.empty()) j["model_path"] = e.source.model.string();
    if (e.source.log) {
        const TrainingLog& log = *e.source.log;
        j["training"] = {{"steps", log.steps},         {"loss", log.losses},
                         {"eval_steps", log.eval_steps}, {"val_loss", log.val_losses},
                         {"sink1", log.sink1},         {"alpha1_per_layer", log.alpha1_per_layer}};
        if (log.config) j["training"]["config"] = *log.config;
        if (log.final_evaluation) j["training"]["final"] = *log.final_evaluation;
        if (log.diverged) j["training"]["diverged"] = *log.diverged;
    }
    if (e.measured) {
        const ModelMeasurement& m = *e.measured;
        j["model"] = {{"source", m.source}, {"architecture", m.architecture}, {"design", m.design},
                      {"params", m.params}, {"layers", m.layers}, {"heads", m.heads}, {"vocab", m.vocab}};
        for (const InputProbe& p : m.probes) {
            json probe = probe_result_json(p.result);
            probe["description"] = p.description;
            j["probes"][p.input] = std::move(probe);
        }
        if (m.diffusion)
            j["power_sink_mass"] = {{"definition", "s_k: mean over all rows of the weight on token 1 in A^k, A the "
                                                   "head-averaged attention; baseline: uniform causal attention "
                                                   "(bidirectional models: uniform attention, 1/T)"},
                                    {"powers", m.diffusion->powers},
                                    {"samples", m.diffusion->samples},
                                    {"mass", m.diffusion->mass},
                                    {"baseline", m.diffusion->baseline}};
        if (m.graph) {
            // NaN (a layer without the value) becomes null, as everywhere in sinklab's JSON.
            j["graph"] = {{"samples", m.graph->samples},
                          {"fiedler", m.graph->fiedler},
                          {"h0_bars", m.graph->h0_bars},
                          {"h1_bars", m.graph->h1_bars},
                          {"mp_ks", m.graph->mp_ks},
                          {"mixing_rate", m.graph->mixing_rate}};
            if (m.graph->frames) j["graph"]["frames"] = m.graph->frames->to_json();
        }
        if (m.maps) j["maps"] = {{"input", m.maps->input}, {"seq_len", m.maps->seq_len}, {"pool", m.maps->pool}};
        if (e.spectrum)
            j["spectrum_over_training"] = {{"definition", "graph.mp_ks of each model the run saved (checkpoints/step_N "
                                                          "and checkpoint/): per layer, mean over the analysed samples"},
                                           {"samples", e.spectrum->samples},
                                           {"steps", e.spectrum->steps},
                                           {"mp_ks", e.spectrum->mp_ks}};
        if (const InputProbe* reference = reference_probe(m); reference && reference->result.has(Metric::no_op))
            j["figures"]["no_op"] = no_op_records(reference->result);
        if (m.over_mixing) {
            j["over_mixing"] = perturb_models_json({*m.over_mixing})["models"][0];
            j["figures"]["over_mixing_by_layer"] = over_mixing_layer_records(*m.over_mixing);
            j["figures"]["over_mixing_by_distance"] = over_mixing_distance_records(*m.over_mixing);
        }
    }
    return j;
}

std::string input_names(const std::vector<InputKind>& kinds, std::vector<std::string>* names) {
    std::string joined;
    for (InputKind kind : kinds) {
        names->push_back(input_kind_name(kind));
        joined += (joined.empty() ? "" : ", ") + names->back();
    }
    return joined;
}

std::vector<std::string> no_sink_findings(const ReportOutcome& outcome, const fs::path& reference_path) {
    const ReportEntry* reference = nullptr;
    for (const ReportEntry& e : outcome.entries)
        if (!reference_path.empty() && e.source.path == reference_path) reference = &e;
    const InputProbe* reference_probe_result =
        reference && reference->measured && !reference->measured->probes.empty() ? reference_probe(*reference->measured) : nullptr;
    const bool reference_has_sink =
        reference_probe_result && !sink_heads(reference_probe_result->result, outcome.eps).empty();
    std::vector<std::string> findings;
    for (const ReportEntry& e : outcome.entries) {
        if (&e == reference || !e.source.log || !e.measured || e.measured->probes.empty()) continue;
        const InputProbe* p = reference_probe(*e.measured);
        if (!p->result.has(Metric::sink) || !sink_heads(p->result, outcome.eps).empty()) continue;
        const std::optional<double> steps = final_number(e, "step");
        std::string line = fmt::format("{} formed no sink in its {} training steps: no head's alpha_1 on {} input "
                                       "exceeds {:.3g}.",
                                       e.source.name, steps ? fmt::format("{:.0f}", *steps) : std::string("logged"),
                                       p->input, outcome.eps);
        if (reference_has_sink) {
            const std::optional<double> reference_steps = final_number(*reference, "step");
            line += fmt::format(" The reference model {}, trained {} steps, has {}.", reference->source.name,
                                reference_steps ? fmt::format("{:.0f}", *reference_steps) : std::string("longer"),
                                sink_finding(reference_probe_result->result, outcome.eps));
        }
        findings.push_back(std::move(line));
    }
    return findings;
}

}  // namespace

std::vector<std::string> ReportOutcome::entry_summaries() const {
    std::vector<std::string> lines;
    for (const ReportEntry& e : entries) {
        std::string line = e.source.name + ":";
        if (const auto v = final_number(e, "val_loss")) line += fmt::format(" val loss {:.3g};", *v);
        if (!e.measured || e.measured->probes.empty()) {
            lines.push_back(line + " not probed (see the notes)");
            continue;
        }
        const InputProbe* reference = reference_probe(*e.measured);
        if (reference->result.has(Metric::sink))
            line += fmt::format(" on {} input, {};", reference->input, sink_finding(reference->result, eps));
        std::string sinks;
        for (const InputProbe& p : e.measured->probes)
            sinks += fmt::format("{}{} {:.3g}%", sinks.empty() ? "" : ", ", p.input, sink1(&p));
        lines.push_back(line + " Sink_1 " + sinks);
    }
    return lines;
}

std::pair<std::string, std::string> default_probe_text(std::vector<std::string>& notes) {
    try {
        NamedText corpus = default_validation_text();
        return {std::move(corpus.text), std::move(corpus.source)};
    } catch (const Error& e) {
        notes.push_back(fmt::format("no natural input: {} (scripts/setup.sh installs the default corpus)", e.what()));
        return {};
    }
}

ReportOutcome build_report(const std::vector<fs::path>& inputs, ReportOptions options) {
    std::error_code ec;
    fs::create_directories(options.out, ec);
    SINKLAB_CHECK(!ec, "report", "{}: cannot create the folder: {}", options.out.string(), ec.message());
    ReportOutcome outcome;
    outcome.eps = options.measure.eps;
    ReportSources found = find_report_sources(inputs);
    outcome.notes = found.notes;
    outcome.streams = std::move(found.streams);
    const bool wants_natural = std::count(options.measure.inputs.begin(), options.measure.inputs.end(), InputKind::natural) > 0;
    if (wants_natural && options.measure.natural_text.empty()) {
        auto [text, source] = default_probe_text(outcome.notes);
        options.measure.natural_text = std::move(text);
        options.measure.natural_source = std::move(source);
    }
    int models = 0;
    int64_t saved_models = 0;  // measured again for the spectrum over training
    for (const ReportSource& s : found.sources) {
        models += s.model.empty() ? 0 : 1;
        saved_models += s.saved.size() >= 2 && measure_spectrum_over_training(options.measure) ? s.saved.size() : 0;
    }
    MeasureOptions measure = options.measure;
    measure.head_maps = options.measure.head_maps && models <= options.max_models_with_head_maps;

    Progress progress("report", static_cast<int64_t>(models) * measurement_steps(measure) + saved_models,
                      options.progress);
    int64_t done = 0;
    for (ReportSource& source : found.sources) {
        ReportEntry entry{std::move(source), std::nullopt, std::nullopt};
        if (!entry.source.model.empty()) {
            const int64_t start = done;
            try {
                entry.measured = measure_model(entry.source.model, measure, [&](const std::string& what) {
                    progress.update(++done, fmt::format("{}: {}", entry.source.name, what));
                });
            } catch (const TokenizerMismatch&) {
                throw;  // a flag that fits no model is the user's error, not a note about one model
            } catch (const Error& e) {
                entry.source.notes.push_back(fmt::format("{}: not loaded: {}", entry.source.model.string(), e.what()));
            }
            done = start + measurement_steps(measure);
            progress.update(done, entry.source.name);
            if (entry.measured && entry.source.saved.size() >= 2 && measure_spectrum_over_training(measure))
                entry.spectrum = spectrum_over_training(entry.source, measure, entry.measured->graph, [&](long step) {
                    progress.update(++done, fmt::format("{}: spectrum of step {}", entry.source.name, step));
                });
            if (entry.measured)
                for (const auto& note : entry.measured->notes) entry.source.notes.push_back(entry.source.name + ": " + note);
        }
        for (const auto& note : entry.source.notes) outcome.notes.push_back(note);
        outcome.entries.push_back(std::move(entry));
    }
    progress.finish(fmt::format("{} measured", models));

    std::vector<std::string> input_list;
    const std::string inputs_text = input_names(options.measure.inputs, &input_list);
    outcome.comparison = comparison_table(outcome.entries, input_list);

    outcome.findings = no_sink_findings(outcome, options.reference);
    ReportPage page(options.title);
    if (!outcome.has_content()) {
        page.paragraph("Nothing to report: no training run, sweep, model or stream result was found in the inputs "
                       "(see below).");
    } else if (!outcome.entries.empty()) {
        page.paragraph(fmt::format(
            "{} run(s) or model(s); each model probed on {} input ({} samples of {} tokens). Sink_1 is the share of "
            "layer-heads whose mean attention to token 1 (alpha_1) exceeds {} (docs/probe.md).",
            outcome.entries.size(), inputs_text, measure.samples, measure.seq_len, measure.eps));
        for (const std::string& line : outcome.entry_summaries()) page.paragraph(line);
        for (const std::string& line : outcome.findings) page.paragraph(line);
    }
    if (!outcome.notes.empty()) {
        page.section("What was found");
        for (const std::string& note : outcome.notes) page.paragraph(note);
    }
    for (const StreamResults& stream : outcome.streams) add_stream_section(page, stream);
    if (!outcome.entries.empty()) {
        page.section("Comparison")
            .table(outcome.comparison,
                   "One row per run or model: final validation loss, Sink_1 (%) per input kind, the largest "
                   "per-layer alpha_1 (natural input), the largest top-|h|/median ratio and the mean excess of s_k "
                   "over uniform attention at the largest k; look for the design whose Sink_1 drops to 0.");
        for (const SweepTable& sweep : found.sweeps)
            page.table(sweep.table, fmt::format("The sweep's own table ({}/results.json): one row per run as "
                                                "`sinklab sweep` wrote it.", sweep.folder.string()));
        add_training_section(page, outcome.entries);
        for (const ReportEntry& e : outcome.entries)
            if (e.measured) add_model_section(page, e);
    }
    page.section("Files").links({{"report.json", "every number on this page, with the probe's definitions"},
                                 {"runs.csv", "the comparison table"}});

    json report = {{"schema", "sinklab.report/1"}, {"title", options.title}, {"notes", outcome.notes},
                   {"inputs", input_list}, {"seq_len", measure.seq_len}, {"samples", measure.samples}};
    report["entries"] = json::array();
    for (const ReportEntry& e : outcome.entries) report["entries"].push_back(entry_json(e));
    for (const StreamResults& stream : outcome.streams) {
        json policies = json::array();
        for (const json& p : stream.json.at("policies"))
            policies.push_back({{"policy", p.at("policy")}, {"settings", p.at("settings")}, {"summary", p.at("summary")}});
        report["streams"].push_back({{"file", stream.file.string()}, {"policies", policies}});
    }
    for (const SweepTable& sweep : found.sweeps) report["sweeps"].push_back({{"folder", sweep.folder.string()},
                                                                           {"csv", to_csv(sweep.table)}});
    write_file_atomic(options.out / "report.json", report.dump(1) + "\n");
    write_csv(options.out / "runs.csv", outcome.comparison);
    outcome.page = options.out / "index.html";
    page.write(outcome.page);
    return outcome;
}

}  // namespace sinklab
