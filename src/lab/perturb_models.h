#pragma once
// `sinklab perturb`: the over-mixing test (perturb/over_mixing.h) on several models, each with and
// without its sink. Builds each model's perturbations from a prompt (its tokenizer, its BOS, or an
// encoder's [CLS] ... [SEP] frame) or from natural windows, prepares every --without-sink condition
// (checking them all before anything runs), and runs them. Encoders: substitutions spare the frame,
// the change is measured on both sides, and each condition reports the masked-LM loss of the clean
// windows. docs/perturb.md describes the command and its JSON.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/sink_interventions.h"
#include "perturb/perturb_report.h"
#include "probe/probe_input.h"
#include "probe/probe_model.h"
#include "io/corpus.h"

namespace sinklab {

struct PerturbRequest {
    // A prompt with one edit (--prompt with --replace OLD=NEW, or --position P --token ID), or,
    // without a prompt, `random` substitutions over natural windows.
    std::string prompt;
    std::string replace;    // "OLD=NEW"
    int position = 0;       // 1-indexed, BOS included (0: not given)
    int64_t token = -1;     // (-1: not given)
    int random = 200;       // substitutions
    int per_window = 4;     // substitutions per window (the clean forward is shared by them)
    int seq_len = 64;       // T of the windows
    uint64_t seed = 1234;
    NamedText text;         // natural text of the windows
    BosMode bos = BosMode::automatic;
    std::vector<SinkIntervention> without_sink;  // drop-bos, mask-first:K, mask-slot
    bool progress = false;

    // The combinations of the flags, before any model is loaded; errors name the flags.
    void validate() const;
    bool uses_prompt() const { return !prompt.empty(); }
};

// The kinds --without-sink takes.
const std::vector<SinkInterventionKind>& without_sink_kinds();

struct ModelOverMixing {
    std::string model;  // the path as given
    std::string source, architecture, design;
    std::string input;                // what was perturbed, one line
    std::vector<int32_t> prompt_ids;  // the clean prompt's ids (prompt mode), with the frame
    std::string loss_input;           // encoders: how the masked-LM loss of each run masks the windows
    std::vector<Perturbation> perturbations;  // what was replaced (positions of the with-sink inputs)
    std::vector<OverMixingRun> runs;  // "with sink" first, then each --without-sink mode in order
};

// One model, loaded: its perturbations and every condition. Throws, naming the flag, for an edit the
// model cannot take (a --replace of another token length, a position outside the prompt, an id
// outside its vocabulary, mask-slot without a slot, drop-bos without BOS).
ModelOverMixing perturb_model(ProbeModel& model, const std::string& name, const PerturbRequest& request);

// Every model, in order; each is checked and prepared before the first one runs.
std::vector<ModelOverMixing> perturb_models(const std::vector<std::string>& models, const PerturbRequest& request);

// The JSON of docs/perturb.md (schema sinklab.perturb/1); the caller adds "parameters".
nlohmann::json perturb_models_json(const std::vector<ModelOverMixing>& models);

}  // namespace sinklab
