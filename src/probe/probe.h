#pragma once
// The probe: runs a model over samples with its taps and gathers the sink diagnostics of
// probe_metrics.h (the accumulators of metrics/) per layer and head, in memory that grows linearly with the sequence length when
// attention takes the blockwise path. docs/probe.md describes the command, the metrics and the JSON.
#include <optional>
#include <string>
#include <vector>

#include "metrics/massive_activations.h"
#include "model/sink_interventions.h"
#include "model/transformer.h"
#include "probe/probe_input.h"
#include "probe/probe_metrics.h"
#include "probe/probe_model.h"

namespace sinklab {

// Sun et al. 2024's intervention: residual dimensions at one layer's output set to zero, or each
// entry h[t, d] to its mean over the samples at the same position t (for the massive entries at the
// first token, Sun et al.'s "set to mean"); or a sink intervention (issue 20: mask-first:K,
// scale-first:F, replace-first:ID, mask-slot; model/sink_interventions.h). The probe reports the
// next-token loss with and without, and for a sink intervention the new Sink_k.
enum class InterventionMode { zero, mean, sink };

struct InterventionSpec {
    InterventionMode mode = InterventionMode::zero;
    int layer = 0;           // zero, mean: the 0-indexed block whose output is edited
    std::vector<int> dims;   // zero, mean: empty means the massive dimensions the probe finds at that layer
    SinkIntervention sink{}; // mode sink
    std::string name() const;  // "zero", "mean", "mask-first:1", ...
};

// --intervene: "zero" | "mean" | a sink intervention (mask-first:K, scale-first:F, replace-first:ID,
// mask-slot); layer and dims are the caller's.
InterventionSpec parse_intervention(const std::string& text);
const std::vector<SinkInterventionKind>& probe_sink_interventions();

struct InterventionResult {
    InterventionMode mode = InterventionMode::zero;
    std::string name;
    int layer = 0;
    std::vector<int> dims;
    // how the dims were chosen: "given"; "massive" (the layer's massive entries); "top" (no entry
    // crossed the thresholds, so the dims of the layer's three largest |h|)
    std::string dims_rule;
    // mean cross-entropy in nats: next-token over all sample positions (decoders), or masked-LM over
    // the masked positions (encoders, ProbeSamples::loss_tokens)
    double loss_clean = 0.0;
    double loss_intervened = 0.0;
    // sink interventions: Sink_k (percent, k = 1..K) and the slot's Sink_* (designs with a slot)
    // of the edited model on the same samples
    std::vector<double> sink_percent_intervened;
    std::optional<double> sink_star_intervened;
    std::string loss = "next_token";  // "next_token" | "masked_lm"
};

struct ProbeOptions {
    std::vector<Metric> metrics = all_metrics();
    // K: alpha_k and Sink_k for k = 1..K (capped at T); 0: every position of a bidirectional model
    // (a sink may sit anywhere, [SEP] last), 10 for a causal one.
    int positions = 10;
    float eps = 0.3f;
    MassiveThresholds thresholds;
    // automatic: resolve_attention_kernel by T (blockwise from kBlockwiseFromT, memory linear in T);
    // every design runs on both kernels
    AttentionKernel kernel = AttentionKernel::automatic;
    std::optional<InterventionSpec> intervention;  // needs samples with targets (natural text)
    int batch_tokens = 4096;  // tokens per forward (B = max(1, batch_tokens / T) sequences)
    bool progress = false;    // a progress line on stderr
};

// The layers whose queries see the same keys (gpt-oss and Gemma 2 alternate sliding and full
// layers), with their sink numbers pooled: Sink_1 (and Sink_* with a slot) in percent over samples
// x the group's layers x heads, alpha_1 (alpha_*) averaged over the group's layers and heads.
struct LayerGroup {
    int window = 0;  // keys a query sees, itself included; 0 = every earlier key (full)
    std::vector<int> layers;
    double sink_1 = 0.0, alpha_1 = 0.0;
    std::optional<double> sink_star, alpha_star;
};

// Sink scores of one special token of the samples (a decoder's BOS, an encoder's [CLS] and [SEP]).
struct SpecialTokenSink {
    SpecialPosition special;                  // what and where (position 1-indexed, as alpha_k's k)
    std::vector<std::vector<double>> alpha;   // [layer][head]
    double sink_percent = 0.0;                // Sink^eps over samples x layers x heads
    std::vector<double> sink_percent_per_layer;
};

struct ProbeResult {
    int layers = 0, heads = 0, kv_heads = 0, positions = 0, samples = 0, seq_len = 0;
    int max_seq_len = 0;  // the model's; seq_len beyond it extrapolates the positions
    // How alpha_k averages: "causal" over the queries t >= k that see key k, "bidirectional" over
    // all T queries (every query sees every key).
    std::string alpha_convention = "causal";
    AttentionKernel kernel = AttentionKernel::materialised;  // the kernel the forwards ran
    std::vector<Metric> metrics;
    // sink: alpha[k-1][layer][head], sink_percent[k-1], sink_percent_per_layer[layer][k-1]
    std::vector<std::vector<std::vector<double>>> alpha;
    std::vector<double> sink_percent;
    std::vector<std::vector<double>> sink_percent_per_layer;
    // sink, designs with a slot column: the slot as Gu et al.'s position * (Sink_1*), alpha_*
    // [layer][head] the mean slot weight over the queries, Sink_* in percent, overall and per layer
    std::optional<double> sink_star;
    std::vector<std::vector<double>> alpha_star;
    std::vector<double> sink_star_per_layer;
    std::vector<int> layer_windows;                       // [layer] the model's window of each layer (0 = full)
    std::vector<LayerGroup> layer_groups;                 // sink, models whose layers differ in window: one per window
    std::vector<SpecialTokenSink> special_tokens;         // sink, one per special token of the samples
    std::vector<std::vector<double>> entropy;             // [layer][head], nats
    std::vector<LayerActivations> activations;            // [layer], massive
    MassiveThresholds thresholds;
    std::vector<double> hidden_norm_ratio;                // [layer], hidden_norms
    std::vector<std::vector<double>> key_norm_ratio;      // [layer][kv head], value_drain
    std::vector<std::vector<double>> value_norm_ratio;    // [layer][kv head], value_drain
    std::vector<std::vector<double>> cos_query_first_key; // [layer][head], geometry
    std::vector<std::vector<double>> cos_query_other_keys;
    // no_op (Barbero, Gu et al. 2025): per layer and head, the share of attention on the sink
    // (alpha_1, or the slot's alpha_* for designs with a slot) against the head's mean output norm
    // over its mean value norm (a head that sinks should output almost nothing)
    std::vector<std::vector<double>> sink_share;          // [layer][head]
    std::vector<std::vector<double>> head_output_ratio;   // [layer][head]
    std::string sink_share_of;                            // "token 1" or "slot"
    std::optional<InterventionResult> intervention;
    double seconds = 0.0;  // wall time of the forwards and metrics

    bool has(Metric metric) const;
};

// Throws when T exceeds the positions of a learned table (max_seq_len rows: nothing to extrapolate
// from). RoPE, sinusoidal, ALiBi, relative and no positions take any T.
void check_probe_seq_len(const ModelConfig& config, int T);
// The Sink threshold must lie in (0, 1): alpha_k is a mean weight, so eps <= 0 counts every head
// and eps >= 1 none. Throws naming --eps.
void check_sink_eps(double eps);
// The line that says T exceeds max_seq_len (the positions extrapolate), or empty when it does not.
std::string beyond_max_seq_len_note(const ModelConfig& config, int T);

// Throws, naming the flag, for an intervention these samples or this model cannot take (no targets,
// a layer or dim outside the model, mask-slot without a slot, an id outside the vocabulary, ...).
// run_probe calls it first; a command may call it before it prints anything.
void check_intervention(const InterventionSpec& spec, const ModelConfig& config, const ProbeSamples& samples);

// Throws "<command> needs X GB, this machine has Y" when N samples of T tokens, run B at a time
// on `kernel` (resolved), cannot fit beside the loaded model (model/memory_estimate.h).
void require_probe_memory(const ModelConfig& config, int64_t N, int64_t T, int64_t B, AttentionKernel kernel,
                          const std::string& command);

ProbeResult run_probe(Transformer& model, const ProbeSamples& samples, const ProbeOptions& options);

// N samples of T tokens for `pm` (what `probe` and `analyze` run the model on): T and N checked
// against the model and the machine's memory, `text` (natural_text's) tokenised by the model's
// tokenizer, BOS as `bos` says. `command` names the command in errors.
ProbeSamples probe_samples(const ProbeModel& pm, const InputSpec& input, const NamedText& text, BosMode bos, int T,
                           int N, uint64_t seed, const char* command);

}  // namespace sinklab
