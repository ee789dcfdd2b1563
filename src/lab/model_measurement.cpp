#include "lab/model_measurement.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "analysis/diffusion.h"
#include "analysis/random_matrix.h"
#include "analysis/spectral.h"
#include "analysis/topology.h"
#include "analysis/sample.h"
#include "core/error.h"
#include "metrics/attention_stats.h"
#include "probe/probe_model.h"
#include "lab/attention_capture.h"
#include "report/heatmap.h"
#include "report/png.h"

namespace sinklab {

namespace {

constexpr double kMapFloor = 1e-3;  // log colour scale from 1e-3 to 1: a sink column and near-zero weights both show

// The heatmaps of one B = 1 forward, rendered as the taps stream by so that only one layer's
// (NH, T, T) weights exist at once: each layer's head average and, when asked, its heads.
class MapRenderer {
public:
    MapRenderer(int layers, const HeatmapOptions& maps, bool head_maps) : maps_(maps), head_maps_(head_maps) {
        rendered.resize(layers);
    }

    void render(int layer, const float* data, int NH, int T) {
        const size_t plane = static_cast<size_t>(T) * T;
        std::vector<float> mean(plane);  // (T, T)
        head_average(mean.data(), data, NH, static_cast<long>(plane));
        HeatmapLayer& out = rendered[layer];
        out.label = fmt::format("layer {}", layer);
        const Heatmap avg = render_heatmap(mean.data(), T, T, maps_);
        out.average_png = encode_png(avg.image);
        pool = avg.pool;
        if (!head_maps_) return;
        HeatmapOptions small = maps_;
        small.max_side = std::min(maps_.max_side, 192);
        small.min_side = std::min(maps_.min_side, 128);
        for (int h = 0; h < NH; ++h)
            out.heads.push_back({fmt::format("head {}", h), encode_png(render_heatmap(data + h * plane, T, T, small).image)});
    }

    std::vector<HeatmapLayer> rendered;
    int pool = 1;

private:
    const HeatmapOptions& maps_;
    bool head_maps_;
};

ProbeOptions probe_options(const MeasureOptions& o) {
    ProbeOptions p;
    p.metrics = {Metric::sink,        Metric::massive,  Metric::hidden_norms,
                 Metric::value_drain, Metric::geometry, Metric::no_op};
    p.eps = o.eps;
    p.positions = std::min(10, o.seq_len);
    p.progress = false;
    return p;
}

// One sample's attention as the analyses read it: the materialised forward (B = 1) with its taps
// captured; `draw` sees each layer's raw weights as they stream by.
analysis::AttentionSample capture_attention(Transformer& model, const int32_t* tokens, int T,
                                            AttentionGraphCapture::LayerHook draw = {}) {
    ForwardOptions forward;
    forward.training = false;
    forward.attention_kernel = AttentionKernel::materialised;
    forward.logits = false;
    AttentionGraphCapture capture(model.config(), /*keep_heads=*/false, /*keep_hidden=*/false, std::move(draw));
    forward.observer = &capture;
    model.forward(tokens, nullptr, 1, T, forward);
    return capture.graph.take_sample();
}

}  // namespace

std::string input_kind_name(InputKind kind) {
    switch (kind) {
        case InputKind::natural: return "natural";
        case InputKind::random: return "random";
        case InputKind::repeat: return "repeat";
    }
    return "?";
}

int measurement_steps(const MeasureOptions& options) {
    return static_cast<int>(options.inputs.size()) + (options.analysis_samples > 0 ? 1 : 0) +
           (options.perturbations > 0 ? 1 : 0);
}

std::vector<SinkIntervention> report_sink_removals(const ModelConfig& config, bool has_bos) {
    std::vector<SinkIntervention> modes = {{.kind = SinkInterventionKind::mask_first, .count = 1}};
    if (has_bos) modes.push_back({.kind = SinkInterventionKind::drop_bos});
    if (has_removable_slot(config.attention)) modes.push_back({.kind = SinkInterventionKind::mask_slot});
    return modes;
}

ModelMeasurement measure_model(const std::filesystem::path& model_path, const MeasureOptions& options,
                               const std::function<void(const std::string&)>& on_step) {
    auto step = [&](const std::string& what) {
        if (on_step) on_step(what);
    };
    ProbeModel pm = load_probe_model(model_path, options.tokenizer);
    Transformer& model = *pm.model;
    const ModelConfig& c = model.config();
    ModelMeasurement m;
    m.source = pm.info.source;
    m.architecture = pm.info.architecture;
    m.design = c.attention.name();
    m.causal = c.causal;
    m.params = static_cast<long>(model.num_params());
    m.layers = c.n_layers;
    m.heads = c.n_heads;
    m.vocab = c.vocab_size;
    const int T = options.seq_len;
    try {
        check_probe_seq_len(c, T);
    } catch (const Error& e) {
        m.notes.push_back(fmt::format("not probed: {}", e.what()));
        return m;
    }
    const SampleFrame frame = sample_frame(pm, BosMode::automatic);

    std::optional<ProbeSamples> natural;
    for (InputKind kind : options.inputs) {
        InputSpec spec;
        spec.kind = kind;
        const std::string name = input_kind_name(kind);
        try {
            SINKLAB_CHECK(kind != InputKind::natural || !options.natural_text.empty(), "report",
                          "no natural text (the default corpus is missing: run scripts/setup.sh)");
            ProbeSamples samples = make_probe_samples(spec, options.natural_text, options.natural_source,
                                                      pm.tokenizer.get(), c.vocab_size, T, options.samples, frame,
                                                      options.seed);
            ProbeResult result = run_probe(model, samples, probe_options(options));
            m.probes.push_back({name, samples.description, std::move(result)});
            if (kind == InputKind::natural) natural = std::move(samples);
        } catch (const Error& e) {
            m.notes.push_back(fmt::format("{} input not probed: {}", name, e.what()));
        }
        step(name);
    }
    if (options.perturbations > 0) {
        try {
            SINKLAB_CHECK(!options.natural_text.empty(), "report",
                          "no natural text (the default corpus is missing: run scripts/setup.sh)");
            PerturbRequest request;
            request.random = options.perturbations;
            request.seq_len = T;
            request.seed = options.seed;
            request.text = {options.natural_text, options.natural_source};
            // drop-bos when the perturbations' windows start with a BOS (an encoder's [CLS]), as
            // perturb_model frames them
            request.without_sink = report_sink_removals(c, frame.first.has_value());
            m.over_mixing = perturb_model(pm, model_path.string(), request);
        } catch (const Error& e) {
            m.notes.push_back(fmt::format("over-mixing not measured: {}", e.what()));
        }
        step("over-mixing");
    }
    if (options.analysis_samples <= 0) return m;

    // Maps and attention powers come from natural text when the model takes it, else random ids.
    ProbeSamples drawn = natural ? *natural
                                 : random_samples(c.vocab_size, T, options.analysis_samples, frame, options.seed);
    HeatmapOptions heatmap;
    heatmap.scale = ScaleKind::log;
    heatmap.log_floor = kMapFloor;
    heatmap.vmin = kMapFloor;
    heatmap.vmax = 1.0;
    heatmap.max_side = options.map_side;
    heatmap.min_side = std::min(256, options.map_side);
    DiffusionCurves curves;
    const int n = std::min(options.analysis_samples, drawn.N);
    // Per-layer sums over the samples, divided below; a NaN (no value for the layer) stays NaN.
    GraphAnalyses graph;
    for (auto* v : {&graph.fiedler, &graph.h0_bars, &graph.h1_bars, &graph.mp_ks, &graph.mixing_rate})
        v->assign(c.n_layers, 0.0);
    analysis::FrameAccumulator frames(n);
    try {
        for (int s = 0; s < n; ++s) {
            MapRenderer renderer(c.n_layers, heatmap, options.head_maps);
            // The first sample is drawn as well as analysed.
            AttentionGraphCapture::LayerHook draw;
            if (s == 0) draw = [&](int layer, const float* w, int NH, int TT) { renderer.render(layer, w, NH, TT); };
            const analysis::AttentionSample sample =
                capture_attention(model, drawn.tokens.data() + static_cast<size_t>(s) * T, T, std::move(draw));
            if (s == 0)
                m.maps = AttentionMaps{natural ? "natural" : "random", T, renderer.pool, kMapFloor, 1.0,
                                       std::move(renderer.rendered)};
            const analysis::DiffusionResult d = analysis::analyze_diffusion(sample);
            for (const auto& l : analysis::analyze_spectral(sample).layers)
                graph.fiedler[l.layer] += l.weighted.eigenvalues.size() > 1 ? l.weighted.eigenvalues[1] : NAN;
            const analysis::TopologyResult topology = analysis::analyze_topology(sample);
            for (const auto& l : topology.layers) {
                graph.h0_bars[l.layer] += analysis::persistent_bars(l.corrected.h0, topology.persistence_eps);
                graph.h1_bars[l.layer] += analysis::persistent_bars(l.corrected.h1, topology.persistence_eps);
            }
            for (const auto& l : analysis::analyze_random_matrix(sample).layers) {
                graph.mp_ks[l.layer] += l.corrected.mp ? l.corrected.mp->ks_distance : NAN;
                graph.mixing_rate[l.layer] += l.corrected.self_attention_max_after_first.value_or(NAN);
            }
            analysis::AttentionSample only_attention;
            only_attention.attention = sample.attention;
            frames.add(only_attention);
            ++graph.samples;
            if (curves.mass.empty()) {
                curves.powers = d.powers;
                curves.mass.assign(d.layers.size(), std::vector<double>(d.powers.size(), 0.0));
                for (const auto& pm_k : d.layers.front().all_rows.power_mass) curves.baseline.push_back(pm_k.baseline);
            }
            for (size_t l = 0; l < d.layers.size(); ++l)
                for (size_t k = 0; k < d.powers.size(); ++k) curves.mass[l][k] += d.layers[l].all_rows.power_mass[k].mass;
            ++curves.samples;
        }
    } catch (const Error& e) {
        m.notes.push_back(fmt::format("attention powers not analysed: {}", e.what()));
    }
    if (graph.samples > 0) {
        for (auto* v : {&graph.fiedler, &graph.h0_bars, &graph.h1_bars, &graph.mp_ks, &graph.mixing_rate})
            for (double& x : *v) x /= graph.samples;
        graph.frames = frames.result();
        m.graph = std::move(graph);
    }
    if (curves.samples > 0) {
        for (auto& layer : curves.mass)
            for (double& v : layer) v /= curves.samples;
        m.diffusion = std::move(curves);
    }
    step("attention maps and powers");
    return m;
}

std::vector<double> measure_mp_ks(const std::filesystem::path& model_path, const MeasureOptions& options) {
    ProbeModel pm = load_probe_model(model_path, options.tokenizer);
    Transformer& model = *pm.model;
    const ModelConfig& c = model.config();
    const int T = options.seq_len;
    check_probe_seq_len(c, T);
    const SampleFrame frame = sample_frame(pm, BosMode::automatic);
    // The samples measure_model analyses: its natural probe samples when the model takes natural
    // text, else random ids.
    std::optional<ProbeSamples> drawn;
    if (std::count(options.inputs.begin(), options.inputs.end(), InputKind::natural) > 0 && !options.natural_text.empty()) {
        try {
            drawn = make_probe_samples(InputSpec{}, options.natural_text,
                                       options.natural_source, pm.tokenizer.get(), c.vocab_size, T, options.samples,
                                       frame, options.seed);
        } catch (const Error&) {
            // a model that cannot take the text is analysed on random ids, as measure_model does
        }
    }
    if (!drawn) drawn = random_samples(c.vocab_size, T, options.analysis_samples, frame, options.seed);
    const int n = std::min(options.analysis_samples, drawn->N);
    SINKLAB_CHECK(n > 0, "report", "{}: no samples to analyse", model_path.string());
    std::vector<double> mp_ks(c.n_layers, 0.0);
    for (int s = 0; s < n; ++s) {
        const analysis::AttentionSample sample = capture_attention(model, drawn->tokens.data() + static_cast<size_t>(s) * T, T);
        for (const auto& l : analysis::analyze_random_matrix(sample).layers)
            mp_ks[l.layer] += l.corrected.mp ? l.corrected.mp->ks_distance : NAN;
    }
    for (double& v : mp_ks) v /= n;
    return mp_ks;
}

}  // namespace sinklab
