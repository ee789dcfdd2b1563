#include "probe/probe.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "core/memory.h"
#include "core/threads.h"
#include "core/progress.h"
#include "metrics/attention_stats.h"
#include "metrics/norm_ratio.h"
#include "metrics/sink_geometry.h"
#include "metrics/sink_scores.h"
#include "model/memory_estimate.h"

namespace sinklab {

const std::vector<SinkInterventionKind>& probe_sink_interventions() {
    static const std::vector<SinkInterventionKind> kinds = {
        SinkInterventionKind::mask_first, SinkInterventionKind::scale_first, SinkInterventionKind::replace_first,
        SinkInterventionKind::mask_slot};
    return kinds;
}

InterventionSpec parse_intervention(const std::string& text) {
    InterventionSpec spec;
    if (text == "zero" || text == "mean") {
        spec.mode = text == "zero" ? InterventionMode::zero : InterventionMode::mean;
        return spec;
    }
    SINKLAB_CHECK(!text.empty(), "probe", "--intervene: expected zero, mean, mask-first:K, scale-first:F, "
                                          "replace-first:ID or mask-slot");
    spec.mode = InterventionMode::sink;
    spec.sink = SinkIntervention::parse(text, "--intervene", probe_sink_interventions());
    return spec;
}

std::string InterventionSpec::name() const {
    switch (mode) {
        case InterventionMode::zero: return "zero";
        case InterventionMode::mean: return "mean";
        case InterventionMode::sink: return sink.name();
    }
    return "";
}

bool ProbeResult::has(Metric metric) const { return std::find(metrics.begin(), metrics.end(), metric) != metrics.end(); }

void check_sink_eps(double eps) {
    SINKLAB_CHECK(eps > 0.0 && eps < 1.0, "probe",
                  "--eps {}: the Sink threshold must lie in (0, 1) (alpha_k is a mean attention weight; 0.3 is Gu et "
                  "al.'s)",
                  eps);
}

void check_probe_seq_len(const ModelConfig& c, int T) {
    SINKLAB_CHECK(c.positions != PositionKind::learned || T <= c.max_seq_len, "probe",
                  "--seq-len {}: this model has {} positions ({} positions, max_seq_len {}); use --seq-len {} or less", T,
                  c.max_seq_len, to_string(c.positions), c.max_seq_len, c.max_seq_len);
}

std::string beyond_max_seq_len_note(const ModelConfig& c, int T) {
    if (T <= c.max_seq_len) return "";
    return fmt::format("T = {} exceeds the model's max_seq_len {}: its {} positions extrapolate beyond the length it "
                       "was configured (or trained) for",
                       T, c.max_seq_len, to_string(c.positions));
}

namespace {

bool wants(const std::vector<Metric>& metrics, Metric m) {
    return std::find(metrics.begin(), metrics.end(), m) != metrics.end();
}

// Feeds every tap of a forward to the accumulators of the requested metrics.
class ProbeObserver final : public TensorObserver {
public:
    ProbeObserver(const ModelConfig& c, const std::vector<Metric>& metrics, int T, int positions, const ProbeOptions& o)
        : config_(c), T_(T) {
        const int L = c.n_layers, NH = c.n_heads, NKV = c.n_kv_heads;
        if (wants(metrics, Metric::sink)) {
            SINKLAB_CHECK(positions >= 1, "probe", "--positions {}: track at least position 1", positions);
            sink.emplace(L, NH, positions, o.eps, c.causal);
        }
        if (wants(metrics, Metric::entropy)) entropy.emplace(L, NH);
        if (wants(metrics, Metric::massive)) massive.emplace(L, c.d_model, o.thresholds);
        if (wants(metrics, Metric::hidden_norms)) hidden_norms.emplace(L, 1);
        if (wants(metrics, Metric::value_drain)) {
            key_norms.emplace(L, NKV);
            value_norms.emplace(L, NKV);
        }
        if (wants(metrics, Metric::geometry)) geometry.emplace(L, NH, NKV, c.hs(), c.causal);
        if (wants(metrics, Metric::no_op)) {
            head_output_norms.emplace(L, NH);
            value_mean_norms.emplace(L, NKV);
        }
    }

    // Collect sum over samples of h[t, d] at `layer` for these dims (the intervention's means).
    const std::vector<int>& summed_dims() const { return sum_dims_; }
    void collect_position_sums(int layer, std::vector<int> dims) {
        sums_layer_ = layer;
        sum_dims_ = std::move(dims);
        position_sums_.assign(static_cast<size_t>(T_) * sum_dims_.size(), 0.0);
    }
    // (T, dims) means over the samples seen.
    std::vector<float> position_means() const {
        std::vector<float> means(position_sums_.size());
        for (size_t i = 0; i < means.size(); ++i) means[i] = static_cast<float>(position_sums_[i] / samples_seen_);
        return means;
    }

    void begin_batch(long first_sample, int B) {
        first_sample_ = first_sample;
        samples_seen_ = first_sample + B;
    }

    void observe(Tap tap, int layer, const float* data, const Shape& shape) override {
        if (tap == Tap::attn_slot_weights) {
            if (sink) slot_.keep(layer, data, shape);
        } else if (tap == Tap::attn_weights) {
            if (!sink && !entropy) return;
            const int B = static_cast<int>(shape[0]), H = static_cast<int>(shape[1]), T = static_cast<int>(shape[2]);
            column_sums_.resize(static_cast<size_t>(B) * H * T);
            row_entropy_.resize(column_sums_.size());
            attention_weight_stats(column_sums_.data(), row_entropy_.data(), data, B, H, T,
                                   sink_metric_proxy(config_.attention));
            if (sink) {
                // the slot's weight summed over the T queries (all see it)
                const float* slot = slot_.take(layer);
                if (slot) slot_weight_sums(slot_sums_, slot, B, H, T);
                add_sink_columns(layer, column_sums_.data(), slot ? slot_sums_.data() : nullptr, B, T);
            }
            if (entropy) entropy->add(layer, row_entropy_.data(), B, T);
        } else if (tap == Tap::attn_column_sums) {
            // (B, H, columns): the column sums of the first keys (the probe's positions)
            if (!sink) return;
            const int B = static_cast<int>(shape[0]), H = static_cast<int>(shape[1]);
            const float* slot = slot_.take(layer);
            if (slot) slot_weight_sums(slot_sums_, slot, B, H, T_);
            add_sink_columns(layer, data, slot ? slot_sums_.data() : nullptr, B, T_, static_cast<int>(shape[2]));
        } else if (tap == Tap::attn_row_entropy) {
            if (entropy) entropy->add(layer, data, static_cast<int>(shape[0]), static_cast<int>(shape[2]));
        } else if (tap == Tap::qkv) {
            const int T = T_, B = static_cast<int>(shape[0] / T), HS = config_.hs();
            const long stride = shape[1];
            if (key_norms) key_norms->add(layer, data + static_cast<long>(config_.n_heads) * HS, stride, HS, B, T);
            if (value_norms)
                value_norms->add(layer, data + static_cast<long>(config_.n_heads + config_.n_kv_heads) * HS, stride, HS,
                                 B, T);
            if (geometry) geometry->add(layer, data, B, T);
            if (value_mean_norms)
                value_mean_norms->add(layer, data + static_cast<long>(config_.n_heads + config_.n_kv_heads) * HS, stride,
                                      HS, B, T);
        } else if (tap == Tap::attn_out) {
            if (head_output_norms) {
                const int T = T_, B = static_cast<int>(shape[0] / T);
                head_output_norms->add(layer, data, shape[1], config_.hs(), B, T);
            }
        } else if (tap == Tap::block_out) {
            const int T = T_, B = static_cast<int>(shape[0] / T), C = config_.d_model;
            if (massive) massive->add(layer, data, B, T, first_sample_);
            if (hidden_norms) hidden_norms->add(layer, data, C, C, B, T);
            if (layer == sums_layer_)
                for (long row = 0; row < shape[0]; ++row)
                    for (size_t d = 0; d < sum_dims_.size(); ++d)
                        position_sums_[static_cast<size_t>(row % T) * sum_dims_.size() + d] +=
                            data[row * C + sum_dims_[d]];
        }
    }

    std::optional<SinkScoreAccumulator> sink;  // with the slot as SinkScoreAccumulator::kSlot, designs with one
    std::optional<EntropyAccumulator> entropy;
    std::optional<MassiveActivationAccumulator> massive;
    std::optional<NormRatioAccumulator> hidden_norms, key_norms, value_norms;
    std::optional<SinkGeometryAccumulator> geometry;
    std::optional<MeanNormAccumulator> head_output_norms, value_mean_norms;

private:
    void add_sink_columns(int layer, const float* column_sums, const float* slot_sums, int B, int T, int columns = 0) {
        SINKLAB_CHECK(sink->positions() <= T, "probe", "sink scores track positions 1..{}, but the sequences have {} tokens",
                      sink->positions(), T);
        sink->add_column_sums(layer, column_sums, slot_sums, B, T, columns);
    }

    const ModelConfig& config_;
    int T_;
    long first_sample_ = 0, samples_seen_ = 0;
    std::vector<float> column_sums_, row_entropy_;  // (B, NH, T) materialised path scratch
    SlotWeightsTap slot_;
    std::vector<float> slot_sums_;                   // (B, NH) the slot's weight summed over the queries
    int sums_layer_ = -1;
    std::vector<int> sum_dims_;
    std::vector<double> position_sums_;  // (T, dims)
};

// Sets the chosen dims of one layer's output before the next block reads it.
class InterventionObserver final : public TensorObserver {
public:
    InterventionObserver(const InterventionResult& spec, std::vector<float> means, int T)
        : spec_(spec), means_(std::move(means)), T_(T) {}
    void observe(Tap, int, const float*, const Shape&) override {}
    void intervene(Tap tap, int layer, float* data, const Shape& shape) override {
        if (tap != Tap::block_out || layer != spec_.layer) return;
        const long C = shape[1];
        const size_t D = spec_.dims.size();
        for (long row = 0; row < shape[0]; ++row)
            for (size_t d = 0; d < D; ++d)
                data[row * C + spec_.dims[d]] =
                    spec_.mode == InterventionMode::zero ? 0.0f : means_[static_cast<size_t>(row % T_) * D + d];
    }

private:
    const InterventionResult& spec_;
    std::vector<float> means_;  // (T, dims), mean mode
    int T_;
};

// The dims an automatic intervention edits: the layer's massive dims, else those of its top entries.
std::vector<int> automatic_dims(const LayerActivations& layer, std::string& rule) {
    std::set<int> dims;
    if (!layer.massive_dims.empty()) {
        rule = "massive";
        for (const auto& [dim, count] : layer.massive_dims) dims.insert(dim);
    } else {
        rule = "top";
        for (const ActivationEntry& e : layer.top) dims.insert(e.dim);
    }
    return {dims.begin(), dims.end()};
}

// Forwards every tap to `inner` and moves the progress line on by one unit per sample and block, so
// that a long sequence (one sample, minutes) still shows progress.
class ProgressObserver final : public TensorObserver {
public:
    ProgressObserver(TensorObserver& inner, Progress& progress, int layers)
        : inner_(inner), progress_(progress), layers_(layers) {}
    void begin_batch(int first_sample, int B) {
        first_sample_ = first_sample;
        B_ = B;
    }
    void observe(Tap tap, int layer, const float* data, const Shape& shape) override {
        inner_.observe(tap, layer, data, shape);
        if (tap == Tap::block_out) progress_.update(static_cast<int64_t>(first_sample_) * layers_ + (layer + 1L) * B_);
    }
    void intervene(Tap tap, int layer, float* data, const Shape& shape) override {
        inner_.intervene(tap, layer, data, shape);
    }

private:
    TensorObserver& inner_;
    Progress& progress_;
    int layers_, first_sample_ = 0, B_ = 0;
};

// Runs every sample's `tokens` (N, T) through the model in batches. With `with_loss` it returns
// the mean loss over the samples' targets (the same number in every sample); without, the forwards
// stop after the last block (no logits). `columns`: the keys whose column sums the blockwise kernel taps.
double run_batches(Transformer& model, const ProbeSamples& samples, const std::vector<int32_t>& tokens,
                   TensorObserver& observer, ProbeObserver* probe_observer, AttentionKernel kernel, int columns,
                   bool with_loss, int batch_tokens, const std::string& label, bool progress_line,
                   FirstKeyEdit first_keys = {}) {
    const int T = samples.T, N = samples.N, L = model.config().n_layers;
    const int B = std::clamp(batch_tokens / T, 1, N);
    Progress progress(label, static_cast<int64_t>(N) * L, progress_line);
    ProgressObserver progress_observer(observer, progress, L);
    ForwardOptions forward;
    forward.training = false;
    forward.observer = &progress_observer;
    forward.attention_kernel = kernel;
    forward.attention_columns = columns;
    forward.logits = with_loss;
    forward.first_keys = first_keys;
    double loss_sum = 0.0;
    for (int n0 = 0; n0 < N; n0 += B) {
        const int b = std::min(B, N - n0);
        if (probe_observer) probe_observer->begin_batch(n0, b);
        progress_observer.begin_batch(n0, b);
        const size_t at = static_cast<size_t>(n0) * T;
        const double loss =
            model.forward(tokens.data() + at, with_loss ? samples.targets.data() + at : nullptr, b, T, forward);
        loss_sum += loss * b;  // every target of natural samples counts: b * T of them
    }
    progress.finish();
    return with_loss ? loss_sum / N : 0.0;
}

double mean(const std::vector<double>& values) {
    double sum = 0.0;
    for (double v : values) sum += v;
    return values.empty() ? 0.0 : sum / static_cast<double>(values.size());
}

// One group per window when the layers' windows differ (every layer has as many heads, so the
// group's pooled Sink is the mean of its layers').
std::vector<LayerGroup> layer_groups(const ProbeResult& r) {
    std::vector<LayerGroup> groups;
    for (int l = 0; l < r.layers; ++l) {
        auto it = std::find_if(groups.begin(), groups.end(), [&](const LayerGroup& g) { return g.window == r.layer_windows[l]; });
        if (it == groups.end()) {
            LayerGroup group;
            group.window = r.layer_windows[l];
            it = groups.insert(groups.end(), group);
        }
        it->layers.push_back(l);
    }
    if (groups.size() < 2) return {};
    for (LayerGroup& g : groups) {
        std::vector<double> sink_1, alpha_1, sink_star, alpha_star;
        for (int l : g.layers) {
            sink_1.push_back(r.sink_percent_per_layer[l][0]);
            alpha_1.push_back(mean(r.alpha[0][l]));
            if (r.sink_star) {
                sink_star.push_back(r.sink_star_per_layer[l]);
                alpha_star.push_back(mean(r.alpha_star[l]));
            }
        }
        g.sink_1 = mean(sink_1);
        g.alpha_1 = mean(alpha_1);
        if (r.sink_star) {
            g.sink_star = mean(sink_star);
            g.alpha_star = mean(alpha_star);
        }
    }
    return groups;
}
}  // namespace

void check_intervention(const InterventionSpec& spec, const ModelConfig& c, const ProbeSamples& samples) {
    SINKLAB_CHECK(!samples.targets.empty(), "probe",
                  "--intervene measures the loss on natural text: use --input natural[:FILE] (an encoder's masked-LM "
                  "loss also needs the mask token of its tokenizer)");
    if (spec.mode == InterventionMode::sink) {
        const SinkIntervention& s = spec.sink;
        const std::string name = s.name();
        SINKLAB_CHECK(s.kind != SinkInterventionKind::mask_first || s.count < samples.T, "probe",
                      "--intervene {}: the samples have {} tokens; hide fewer", name, samples.T);
        SINKLAB_CHECK(s.kind != SinkInterventionKind::replace_first || s.token < c.vocab_size, "probe",
                      "--intervene {}: the id is outside the vocabulary (0..{})", name, c.vocab_size - 1);
        SINKLAB_CHECK(s.kind != SinkInterventionKind::mask_slot || has_removable_slot(c.attention), "probe",
                      "--intervene mask-slot: attention design '{}' has no slot column or sink token to remove",
                      c.attention.name());
        return;
    }
    SINKLAB_CHECK(spec.layer >= 0 && spec.layer < c.n_layers, "probe", "--layer {}: the model has layers 0..{}",
                  spec.layer, c.n_layers - 1);
    for (int d : spec.dims)
        SINKLAB_CHECK(d >= 0 && d < c.d_model, "probe", "--dims: dimension {} is outside the residual stream (0..{})",
                      d, c.d_model - 1);
}

namespace {

// A sink intervention (mask-first, scale-first: the attention's first keys; replace-first: another
// first token; mask-slot: the model without its slot), run over the same samples with the loss and
// the sink metric.
InterventionResult run_sink_intervention(Transformer& model, const ProbeSamples& samples, const ProbeOptions& options,
                                         AttentionKernel kernel, int positions, double loss_clean) {
    const SinkIntervention& s = options.intervention->sink;
    InterventionResult ir;
    ir.mode = InterventionMode::sink;
    ir.name = s.name();
    ir.loss_clean = loss_clean;
    ProbeSamples edited;
    const ProbeSamples* used = &samples;
    if (s.kind == SinkInterventionKind::replace_first) {
        edited = samples;
        for (int n = 0; n < samples.N; ++n) {
            const size_t first = static_cast<size_t>(n) * samples.T;
            edited.tokens[first] = static_cast<int32_t>(s.token);
            if (!edited.loss_tokens.empty()) edited.loss_tokens[first] = static_cast<int32_t>(s.token);
        }
        used = &edited;
    }
    std::unique_ptr<Transformer> bare;
    Transformer* target = &model;
    if (s.kind == SinkInterventionKind::mask_slot) {
        bare = copy_without_slot(model);
        target = bare.get();
    }
    const ModelConfig& c = target->config();
    const int TS = samples.T + (c.attention.uses_sink_token() ? 1 : 0);
    ProbeObserver observer(c, {Metric::sink}, TS, positions, options);
    // the blockwise kernel reweights key 0 (scale-first) of softmax rows only; other rows take the materialised one
    if (s.kind == SinkInterventionKind::scale_first && c.attention.kind != AttentionKind::softmax)
        kernel = AttentionKernel::materialised;
    // An encoder's masked-LM loss has inputs of its own (ProbeSamples::loss_tokens): Sink_k is then
    // measured on the samples and the loss in a second pass over those, as for the clean model.
    const bool own_loss_input = !used->loss_tokens.empty();
    ir.loss = own_loss_input ? "masked_lm" : "next_token";
    ir.loss_intervened = run_batches(*target, *used, used->tokens, observer, &observer, kernel, positions,
                                     !own_loss_input, options.batch_tokens, "intervention", options.progress,
                                     s.first_key_edit());
    if (own_loss_input) {
        ProbeObserver loss_observer(c, {}, TS, positions, options);
        ir.loss_intervened = run_batches(*target, *used, used->loss_tokens, loss_observer, &loss_observer, kernel, 1,
                                         true, options.batch_tokens, "intervention loss", options.progress,
                                         s.first_key_edit());
    }
    for (int k = 1; k <= positions; ++k) ir.sink_percent_intervened.push_back(observer.sink->sink_percent(k));
    if (observer.sink->has_slot()) ir.sink_star_intervened = observer.sink->sink_percent(SinkScoreAccumulator::kSlot);
    return ir;
}

}  // namespace

void require_probe_memory(const ModelConfig& config, int64_t N, int64_t T, int64_t B, AttentionKernel kernel,
                          const std::string& command) {
    const double samples = 2.0 * static_cast<double>(N) * static_cast<double>(T) * sizeof(int32_t);  // tokens, targets
    const TransformerMemory forward =
        transformer_memory(config, B, T, false, kernel == AttentionKernel::materialised, num_threads());
    require_memory(samples + forward.total(), command,
                   fmt::format("{} samples of {} tokens ({} attention kernel)", N, T, attention_kernel_name(kernel)),
                   "lower --samples or --seq-len");
}

ProbeResult run_probe(Transformer& model, const ProbeSamples& samples, const ProbeOptions& options) {
    const auto start = std::chrono::steady_clock::now();
    const ModelConfig& c = model.config();
    const int T = samples.T, N = samples.N;
    SINKLAB_CHECK(T >= 2 && N >= 1 && samples.tokens.size() == static_cast<size_t>(N) * T, "probe",
                  "the probe needs at least one sample of at least 2 tokens");
    check_probe_seq_len(c, T);
    check_sink_eps(options.eps);
    if (options.intervention) check_intervention(*options.intervention, c, samples);

    ProbeResult r;
    r.layers = c.n_layers;
    r.heads = c.n_heads;
    r.kv_heads = c.n_kv_heads;
    r.positions = options.positions > 0 ? std::min(options.positions, T) : c.causal ? std::min(10, T) : T;
    r.alpha_convention = c.causal ? "causal" : "bidirectional";
    r.samples = N;
    r.seq_len = T;
    r.max_seq_len = c.max_seq_len;
    // the positions the blocks see decide (the sink token of sink_token designs included)
    r.kernel = resolve_attention_kernel(options.kernel, T + (c.attention.uses_sink_token() ? 1 : 0));
    r.metrics = options.metrics;
    r.thresholds = options.thresholds;
    const bool sink_intervention = options.intervention && options.intervention->mode == InterventionMode::sink;
    const bool automatic_dims_wanted = options.intervention && !sink_intervention && options.intervention->dims.empty();
    if (automatic_dims_wanted && !r.has(Metric::massive)) r.metrics.push_back(Metric::massive);
    if (sink_intervention && !r.has(Metric::sink)) r.metrics.push_back(Metric::sink);  // the Sink_k it changes
    if (r.has(Metric::no_op) && !r.has(Metric::sink)) r.metrics.push_back(Metric::sink);  // the sink share

    require_probe_memory(c, N, T, std::clamp(options.batch_tokens / T, 1, N), r.kernel, "probe");
    // sink_token: the blocks see the sink token first, so rows of the taps come T + 1 per sample
    const int sink = c.attention.uses_sink_token() ? 1 : 0, TS = T + sink;
    // the special tokens' scores come from the same accumulator: it tracks up to the last of them
    int tracked = r.positions;
    for (const SpecialPosition& special : samples.specials) tracked = std::max(tracked, special.position + sink);
    ProbeObserver observer(c, r.metrics, TS, tracked, options);
    if (options.intervention && options.intervention->mode == InterventionMode::mean) {
        std::vector<int> dims = options.intervention->dims;
        if (dims.empty())  // automatic: not known before this run, so keep every dim's means
            for (int d = 0; d < c.d_model; ++d) dims.push_back(d);
        observer.collect_position_sums(options.intervention->layer, dims);
    }
    // The loss of interventions reads the metrics' pass, unless it has inputs of its own (an
    // encoder's masked-LM input): then a clean pass over those follows, collecting the means.
    const bool own_loss_input = !samples.loss_tokens.empty();
    const bool with_loss = options.intervention.has_value();
    double loss = run_batches(model, samples, samples.tokens, observer, &observer, r.kernel, tracked,
                              with_loss && !own_loss_input, options.batch_tokens, "probe", options.progress);
    ProbeObserver loss_observer(c, {}, TS, r.positions, options);
    ProbeObserver& means_from = with_loss && own_loss_input ? loss_observer : observer;
    if (with_loss && own_loss_input) {
        if (options.intervention->mode == InterventionMode::mean)
            loss_observer.collect_position_sums(options.intervention->layer, observer.summed_dims());
        loss = run_batches(model, samples, samples.loss_tokens, loss_observer, &loss_observer, r.kernel, 1, true,
                           options.batch_tokens, "clean loss", options.progress);
    }

    if (observer.sink && observer.sink->has_slot()) {
        r.alpha_star = observer.sink->alpha(SinkScoreAccumulator::kSlot);
        r.sink_star = observer.sink->sink_percent(SinkScoreAccumulator::kSlot);
        r.sink_star_per_layer = observer.sink->sink_percent_per_layer(SinkScoreAccumulator::kSlot);
    }
    if (observer.sink) {
        for (const SpecialPosition& special : samples.specials) {
            const int k = special.position + sink;
            r.special_tokens.push_back({special, observer.sink->alpha(k), observer.sink->sink_percent(k),
                                        observer.sink->sink_percent_per_layer(k)});
        }
        for (int k = 1; k <= r.positions; ++k) {
            r.alpha.push_back(observer.sink->alpha(k));
            r.sink_percent.push_back(observer.sink->sink_percent(k));
        }
        r.sink_percent_per_layer.assign(r.layers, {});
        for (int k = 1; k <= r.positions; ++k) {
            const std::vector<double> per_layer = observer.sink->sink_percent_per_layer(k);
            for (int l = 0; l < r.layers; ++l) r.sink_percent_per_layer[l].push_back(per_layer[l]);
        }
    }
    for (int l = 0; l < r.layers; ++l) r.layer_windows.push_back(c.window_of(l));
    if (observer.sink) r.layer_groups = layer_groups(r);
    if (observer.entropy) r.entropy = observer.entropy->mean();
    if (observer.massive)
        for (int l = 0; l < r.layers; ++l) r.activations.push_back(observer.massive->layer(l));
    if (observer.hidden_norms)
        for (const auto& layer : observer.hidden_norms->ratio()) r.hidden_norm_ratio.push_back(layer[0]);
    if (observer.key_norms) r.key_norm_ratio = observer.key_norms->ratio();
    if (observer.value_norms) r.value_norm_ratio = observer.value_norms->ratio();
    if (observer.geometry) {
        r.cos_query_first_key = observer.geometry->cos_first();
        r.cos_query_other_keys = observer.geometry->cos_rest();
    }
    if (observer.head_output_norms) {
        const auto outputs = observer.head_output_norms->mean(), values = observer.value_mean_norms->mean();
        const int group = c.n_heads / c.n_kv_heads;
        r.sink_share_of = r.sink_star ? "slot" : "token 1";
        r.sink_share = r.sink_star ? r.alpha_star : r.alpha[0];
        r.head_output_ratio.assign(r.layers, std::vector<double>(r.heads, 0.0));
        for (int l = 0; l < r.layers; ++l)
            for (int h = 0; h < r.heads; ++h) {
                const double v = values[l][h / group];
                r.head_output_ratio[l][h] = v > 0.0 ? outputs[l][h] / v : std::nan("");
            }
    }

    if (sink_intervention) {
        r.intervention = run_sink_intervention(model, samples, options, r.kernel, r.positions, loss);
    } else if (options.intervention) {
        const InterventionSpec& spec = *options.intervention;
        InterventionResult ir;
        ir.mode = spec.mode;
        ir.name = spec.name();
        ir.layer = spec.layer;
        ir.dims = spec.dims;
        ir.dims_rule = "given";
        if (ir.dims.empty()) ir.dims = automatic_dims(r.activations[spec.layer], ir.dims_rule);
        std::vector<float> means;
        if (spec.mode == InterventionMode::mean) {
            const std::vector<float> all = means_from.position_means();  // (T, given dims) or (T, C)
            const size_t width = spec.dims.empty() ? static_cast<size_t>(c.d_model) : spec.dims.size();
            for (int t = 0; t < TS; ++t)
                for (size_t d = 0; d < ir.dims.size(); ++d)
                    means.push_back(all[static_cast<size_t>(t) * width + (spec.dims.empty() ? ir.dims[d] : d)]);
        }
        ir.loss_clean = loss;
        ir.loss = own_loss_input ? "masked_lm" : "next_token";
        InterventionObserver edit(ir, std::move(means), TS);
        ir.loss_intervened = run_batches(model, samples, own_loss_input ? samples.loss_tokens : samples.tokens, edit,
                                         nullptr, r.kernel, 1, true, options.batch_tokens, "intervention",
                                         options.progress);
        r.intervention = ir;
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
}

ProbeSamples probe_samples(const ProbeModel& pm, const InputSpec& input, const NamedText& text, BosMode bos, int T,
                           int N, uint64_t seed, const char* command) {
    const ModelConfig& c = pm.model->config();
    SINKLAB_CHECK(T > 0 && N > 0, command, "--seq-len and --samples must be positive, got {} and {}", T, N);
    check_probe_seq_len(c, T);
    // The least any command needs for them (one sample at a time, blockwise); commands that take
    // more check again once they know how.
    require_probe_memory(c, N, T, 1, AttentionKernel::blockwise, command);
    return make_probe_samples(input, text.text, text.source, pm.tokenizer.get(), c.vocab_size, T, N,
                              sample_frame(pm, bos), seed);
}

}  // namespace sinklab
