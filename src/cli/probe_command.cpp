// `sinklab probe`: sink diagnostics of any model the engine loads, at any sequence length.
#include <charconv>
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/attention_flags.h"
#include "cli/commands.h"
#include "cli/threads_option.h"
#include "cli/probe_samples.h"
#include "core/error.h"
#include "core/files.h"
#include "core/text.h"
#include "core/threads.h"
#include "probe/attention_maps.h"
#include "probe/probe.h"
#include "probe/probe_model.h"
#include "probe/probe_report.h"

namespace sinklab::cli {

namespace {

struct ProbeArgs {
    std::string model;
    SampleFlags sample;
    float eps = 0.3f;
    int positions = 0;  // auto: 10 for causal models, every position for bidirectional ones
    std::string metrics = "all";
    std::string attention_kernel = "auto";
    std::string maps;
    std::string map_scale = "linear";
    std::string colormap = "viridis";
    std::string intervene;
    int layer = -1;
    std::string dims;
    std::string json;
    int threads = 0;
    bool quiet = false;
};

// "auto" (empty: the massive dims found at the layer) or a comma-separated list of dims.
std::vector<int> parse_dims(const std::string& text) {
    std::vector<int> dims;
    if (text == "auto") return dims;
    for (const std::string& item : split_list(text)) {
        int d = 0;
        const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), d);
        SINKLAB_CHECK(!item.empty() && ec == std::errc() && end == item.data() + item.size(), "probe",
                      "--dims '{}': expected auto or dims like 447,138 ('{}' is not an integer)", text, item);
        dims.push_back(d);
    }
    return dims;
}

std::optional<InterventionSpec> intervention_from(const ProbeArgs& a) {
    if (a.intervene.empty()) {
        SINKLAB_CHECK(a.layer < 0 && a.dims.empty(), "probe", "--layer and --dims belong to --intervene zero|mean");
        return std::nullopt;
    }
    InterventionSpec spec = parse_intervention(a.intervene);
    if (spec.mode == InterventionMode::sink) {
        SINKLAB_CHECK(a.layer < 0 && a.dims.empty(), "probe",
                      "--layer and --dims belong to --intervene zero|mean; {} edits every layer", a.intervene);
        return spec;
    }
    SINKLAB_CHECK(a.layer >= 0, "probe", "--intervene needs --layer L (the block whose output is edited, from 0)");
    spec.layer = a.layer;
    spec.dims = parse_dims(a.dims.empty() ? "auto" : a.dims);
    return spec;
}

void run_probe_command(const ProbeArgs& a) {
    set_threads(a.threads);
    // Everything the flags say is checked before the model is loaded.
    const InputSpec input = InputSpec::parse(a.sample.input);
    const BosMode bos_mode = parse_bos_mode(a.sample.bos);
    ProbeOptions options;
    options.metrics = parse_metrics(a.metrics);
    options.positions = a.positions;
    options.eps = a.eps;
    options.kernel = parse_attention_kernel(a.attention_kernel);
    options.intervention = intervention_from(a);
    options.progress = !a.quiet;
    AttentionMapOptions map_options;
    map_options.colormap = colormap_from_name(a.colormap);
    SINKLAB_CHECK(a.map_scale == "linear" || a.map_scale == "log", "probe", "--map-scale '{}': expected linear or log",
                  a.map_scale);
    map_options.scale = a.map_scale == "log" ? ScaleKind::log : ScaleKind::linear;
    SINKLAB_CHECK(a.positions >= 0, "probe", "--positions {}: track positions 1..K, K >= 1 (0: auto)", a.positions);
    check_sink_eps(a.eps);

    ProbeModel pm = load_probe_model(a.model, a.sample.tokenizer);
    Transformer& model = *pm.model;
    const ModelConfig& c = model.config();
    ProbeSamples samples =
        probe_samples(pm, input, natural_text(input, "probe"), bos_mode, a.sample.seq_len, a.sample.samples, a.sample.seed, "probe");
    // an encoder's intervention loss is the masked-LM loss, over a seeded 15% of the text tokens
    if (options.intervention && !c.causal && input.kind == InputKind::natural && pm.mask_id)
        mask_for_masked_lm(samples, *pm.mask_id, kMaskedLmRate, a.sample.seed);
    if (options.intervention) check_intervention(*options.intervention, c, samples);
    std::printf("probe %s (%s %s, %d layers, %d heads, %d kv heads, attention %s)\n%s\n", a.model.c_str(),
                pm.info.source.c_str(), pm.info.architecture.c_str(), c.n_layers, c.n_heads, c.n_kv_heads,
                c.attention.name().c_str(), samples.description.c_str());
    if (const std::string note = beyond_max_seq_len_note(c, samples.T); !note.empty()) std::printf("%s\n", note.c_str());
    std::fflush(stdout);

    const ProbeResult result = run_probe(model, samples, options);
    std::printf("attention kernel %s, %.2f s\n%s", attention_kernel_name(result.kernel).c_str(), result.seconds,
                probe_table(result).c_str());

    std::vector<std::string> maps;
    if (!a.maps.empty()) {
        maps = write_attention_maps(model, samples.tokens.data(), samples.T, a.maps, map_options);
        std::printf("wrote %zu attention maps of sample 0 to %s\n", maps.size(), a.maps.c_str());
    }
    if (!a.json.empty()) {
        nlohmann::json j = probe_result_json(result);
        j["parameters"] = {{"model", a.model},
                           {"input", input.name()},
                           {"seq_len", a.sample.seq_len},
                           {"samples", a.sample.samples},
                           {"eps", a.eps},
                           {"bos", bos_mode_name(bos_mode)},
                           {"positions", a.positions},
                           {"metrics", a.metrics},
                           {"attention_kernel", a.attention_kernel},
                           {"seed", a.sample.seed},
                           {"threads", a.threads}};
        j["model"] = {{"source", pm.info.source},
                      {"architecture", pm.info.architecture},
                      {"config", c.to_json()}};
        j["input"] = {{"description", samples.description},
                      {"bos_id", samples.bos ? nlohmann::json(*samples.bos) : nlohmann::json()},
                      {"eos_id", samples.eos ? nlohmann::json(*samples.eos) : nlohmann::json()}};
        if (!maps.empty()) j["maps"] = {{"dir", a.maps}, {"files", maps}, {"scale", a.map_scale}, {"colormap", a.colormap}};
        write_file_atomic(a.json, j.dump(1) + "\n");
    }
}

}  // namespace

void add_probe_command(CLI::App& app) {
    auto a = std::make_shared<ProbeArgs>();
    CLI::App* cmd = app.add_subcommand("probe",
        "Sink diagnostics of a model: sink scores alpha_k and Sink_k, massive activations, hidden, key and value\n"
        "norms of token 1 against the rest, query/key geometry and attention entropy, per layer and head.\n"
        "Every attention design runs on both attention kernels; the blockwise one needs memory linear in --seq-len.\n"
        "Definitions and the JSON schema: docs/probe.md.");
    cmd->add_option("--model", a->model, "model folder (sinklab or Hugging Face), training run, or llama2.c .bin")
        ->required();
    add_sample_options(cmd, a->sample);
    cmd->add_option("--eps", a->eps, "threshold of Sink_k (alpha_k > eps)")->capture_default_str();
    cmd->add_option("--positions", a->positions,
                    "K: alpha_k and Sink_k for k = 1..K (0, the default: 10, or every position T for a bidirectional "
                    "encoder)")
        ->capture_default_str();
    cmd->add_option("--metrics", a->metrics,
                    "all, or a comma-separated list of sink, entropy, massive, hidden_norms, value_drain, geometry")
        ->capture_default_str();
    add_attention_kernel_option(cmd, a->attention_kernel);
    cmd->add_option("--maps", a->maps, "write attention heatmaps of sample 0 (PNG, per layer/head and head mean) here");
    cmd->add_option("--map-scale", a->map_scale, "linear|log colour scale of the maps")->capture_default_str();
    cmd->add_option("--colormap", a->colormap, "viridis|magma")->capture_default_str();
    cmd->add_option("--intervene", a->intervene,
                    "zero|mean: set --dims of --layer's output to 0 or to their mean per position (Sun et al.); or take "
                    "the sink away: mask-first:K (no query after the first K keys sees them), scale-first:F (the first "
                    "key's weight times F), replace-first:ID (another token at position 1), mask-slot (the slot or "
                    "sink token removed). Reports the loss change on natural input (and the new Sink_k)");
    cmd->add_option("--layer", a->layer, "the block whose output --intervene edits (0-indexed)");
    cmd->add_option("--dims", a->dims, "D1,D2,... or auto (the massive dims found at --layer; the default)");
    cmd->add_option("--json", a->json, "write every number, its definition and the parameters to this file");
    add_threads_option(*cmd, a->threads);
    cmd->add_flag("--quiet", a->quiet, "no progress line");
    cmd->callback([a] { run_probe_command(*a); });
}

}  // namespace sinklab::cli
