#include "lab/perturb_models.h"

#include <algorithm>
#include <memory>

#include <fmt/format.h>

#include "core/error.h"
#include "perturb/over_mixing.h"
#include "probe/probe.h"

namespace sinklab {

const std::vector<SinkInterventionKind>& without_sink_kinds() {
    static const std::vector<SinkInterventionKind> kinds = {
        SinkInterventionKind::drop_bos, SinkInterventionKind::mask_first, SinkInterventionKind::mask_slot};
    return kinds;
}

void PerturbRequest::validate() const {
    if (uses_prompt()) {
        const bool by_position = position != 0 || token != -1;
        SINKLAB_CHECK(replace.empty() != !by_position, "perturb",
                      "--prompt needs one edit: --replace OLD=NEW, or --position P with --token ID");
        SINKLAB_CHECK(replace.empty() || replace.find('=') != std::string::npos, "perturb",
                      "--replace '{}': expected OLD=NEW", replace);
        SINKLAB_CHECK(replace.empty() || replace.find('=') > 0, "perturb", "--replace '{}': OLD is empty", replace);
        SINKLAB_CHECK(!by_position || (position != 0 && token != -1), "perturb",
                      "--position and --token go together (the position P, from 1, and the new token's id)");
        SINKLAB_CHECK(!by_position || position >= 1, "perturb", "--position {}: positions count from 1", position);
        SINKLAB_CHECK(!by_position || token >= 0, "perturb", "--token {}: token ids are >= 0", token);
    } else {
        SINKLAB_CHECK(replace.empty() && position == 0 && token == -1, "perturb",
                      "--replace, --position and --token edit a --prompt; give one");
        SINKLAB_CHECK(random >= 1, "perturb", "--random {}: ask for at least one substitution", random);
        SINKLAB_CHECK(per_window >= 1, "perturb", "--per-window {}: at least one", per_window);
        SINKLAB_CHECK(seq_len >= 3, "perturb", "--seq-len {}: windows need at least 3 tokens", seq_len);
    }
}

namespace {

// A condition ready to run: the model it runs (the loaded one, or a copy without its slot), the
// perturbations (without BOS for drop-bos) and the attention edit.
struct Condition {
    std::string name;
    Transformer* model = nullptr;
    std::unique_ptr<Transformer> owned;
    PerturbationSet set;
    FirstKeyEdit edit;
};

struct Prepared {
    ModelOverMixing out;
    std::vector<Condition> conditions;
};

std::vector<int32_t> with_bos(std::optional<int32_t> bos, std::vector<int32_t> ids) {
    if (bos) ids.insert(ids.begin(), *bos);
    return ids;
}

PerturbationSet prompt_set(const ProbeModel& pm, const std::string& name, const PerturbRequest& r,
                           std::optional<int32_t> bos, std::vector<int32_t>& prompt_ids) {
    SINKLAB_CHECK(pm.tokenizer, "perturb", "--prompt needs the model's tokenizer, and {} has none (use --random)", name);
    const int V = pm.model->config().vocab_size;
    prompt_ids = with_bos(bos, pm.tokenizer->encode(r.prompt));
    const int T = static_cast<int>(prompt_ids.size());
    SINKLAB_CHECK(T >= 1, "perturb", "--prompt: the prompt has no tokens");
    check_probe_seq_len(pm.model->config(), T);
    for (int32_t id : prompt_ids)
        SINKLAB_CHECK(id >= 0 && id < V, "perturb", "{}: its tokenizer gave id {}, outside the vocabulary (size {})",
                      name, id, V);
    if (r.replace.empty()) {
        SINKLAB_CHECK(r.position <= T, "perturb", "--position {}: the prompt has {} tokens for {} (positions 1..{}{})",
                      r.position, T, name, T, bos ? ", BOS first" : "");
        SINKLAB_CHECK(r.token < V, "perturb", "--token {}: outside the vocabulary of {} (0..{})", r.token, name, V - 1);
        std::vector<int32_t> perturbed = prompt_ids;
        perturbed[r.position - 1] = static_cast<int32_t>(r.token);
        return prompt_perturbation(prompt_ids, perturbed, r.position - 1,
                                   fmt::format("prompt of {} tokens, position {} replaced by id {}", T, r.position,
                                               r.token));
    }
    const size_t eq = r.replace.find('=');
    const std::string old_text = r.replace.substr(0, eq), new_text = r.replace.substr(eq + 1);
    const size_t at = r.prompt.find(old_text);
    SINKLAB_CHECK(at != std::string::npos, "perturb", "--replace '{}': '{}' does not occur in the prompt", r.replace,
                  old_text);
    std::string edited = r.prompt;
    edited.replace(at, old_text.size(), new_text);
    const std::vector<int32_t> perturbed = with_bos(bos, pm.tokenizer->encode(edited));
    SINKLAB_CHECK(perturbed.size() == prompt_ids.size(), "perturb",
                  "--replace '{}': {}'s tokenizer makes {} tokens of the prompt and {} of the edited one; replace a "
                  "word by one of the same token length",
                  r.replace, name, prompt_ids.size(), perturbed.size());
    // identical prompts: the no-op edit sits where OLD starts
    const int start = std::min(T - 1, static_cast<int>(with_bos(bos, pm.tokenizer->encode(r.prompt.substr(0, at))).size()));
    return prompt_perturbation(prompt_ids, perturbed, start,
                               fmt::format("prompt of {} tokens, '{}' replaced by '{}'", T, old_text, new_text));
}

PerturbationSet random_set(const ProbeModel& pm, const PerturbRequest& r, std::optional<int32_t> bos) {
    const ModelConfig& c = pm.model->config();
    const int W = (r.random + r.per_window - 1) / r.per_window;
    check_probe_seq_len(c, r.seq_len);
    const ProbeSamples windows = make_probe_samples(InputSpec{}, r.text.text, r.text.source, pm.tokenizer.get(),
                                                    c.vocab_size, r.seq_len, W, bos, r.seed);
    // never the first token (the sink of a model without BOS), nor with BOS the first text token,
    // which drop-bos makes the first
    const int first_position = bos ? 2 : 1;
    std::vector<int32_t> excluded;
    if (bos) excluded.push_back(*bos);
    PerturbationSet set = random_perturbations(windows.tokens, r.seq_len, r.random, r.per_window, first_position,
                                               c.vocab_size, excluded, r.seed);
    set.description += fmt::format(" from {}{}", r.text.source, bos ? fmt::format(", BOS {} first", *bos) : "");
    return set;
}

Prepared prepare(ProbeModel& pm, const std::string& name, const PerturbRequest& r) {
    const ModelConfig& c = pm.model->config();
    // The test measures how a replaced token spreads to the positions after it, which in an encoder
    // see it as much as the positions before it do: no causal direction to measure along.
    SINKLAB_CHECK(c.causal, "perturb",
                  "{} is an encoder ({}, bidirectional attention): the over-mixing test measures the spread to the "
                  "later positions of a causal model; probe, analyze and report read encoders",
                  name, pm.info.architecture);
    const std::optional<int32_t> bos = resolve_bos(r.bos, pm.bos_id, pm.adds_bos, c.vocab_size);
    Prepared p;
    p.out.model = name;
    p.out.source = pm.info.source;
    p.out.architecture = pm.info.architecture;
    p.out.design = c.attention.name();
    PerturbationSet set = r.uses_prompt() ? prompt_set(pm, name, r, bos, p.out.prompt_ids) : random_set(pm, r, bos);
    p.out.input = set.description;
    p.out.perturbations = set.perturbations;
    for (const SinkIntervention& s : r.without_sink) {
        Condition cond;
        cond.name = s.name();
        cond.model = pm.model.get();
        cond.set = set;
        const std::string flag = "--without-sink " + s.name();
        switch (s.kind) {
            case SinkInterventionKind::drop_bos:
                SINKLAB_CHECK(bos, "perturb", "{}: the inputs of {} have no BOS token (its tokenizer adds none, or "
                                              "--bos off); use mask-first:1",
                              flag, name);
                cond.set = drop_first_token(set, *bos);
                break;
            case SinkInterventionKind::mask_first:
                SINKLAB_CHECK(s.count < set.T, "perturb", "{}: the inputs have {} tokens; hide fewer", flag, set.T);
                cond.edit = s.first_key_edit();
                break;
            case SinkInterventionKind::mask_slot:
                SINKLAB_CHECK(has_removable_slot(c.attention), "perturb",
                              "{}: {} (attention '{}') has no slot column or sink token to remove", flag, name,
                              c.attention.name());
                cond.owned = copy_without_slot(*pm.model);
                cond.model = cond.owned.get();
                break;
            default: fail("perturb", "{}: not a --without-sink mode", flag);
        }
        p.conditions.push_back(std::move(cond));
    }
    Condition with;
    with.name = "with sink";
    with.model = pm.model.get();
    with.set = std::move(set);
    p.conditions.insert(p.conditions.begin(), std::move(with));
    return p;
}

void run(Prepared& p, const PerturbRequest& r) {
    for (Condition& cond : p.conditions) {
        OverMixingOptions options;
        options.first_keys = cond.edit;
        options.progress = r.progress;
        options.label = fmt::format("perturb {} ({})", p.out.model, cond.name);
        p.out.runs.push_back({p.out.model, cond.name, measure_over_mixing(*cond.model, cond.set, options)});
    }
}

}  // namespace

ModelOverMixing perturb_model(ProbeModel& model, const std::string& name, const PerturbRequest& request) {
    request.validate();
    Prepared p = prepare(model, name, request);
    run(p, request);
    return std::move(p.out);
}

std::vector<ModelOverMixing> perturb_models(const std::vector<std::string>& models, const PerturbRequest& request) {
    request.validate();
    std::vector<ProbeModel> loaded;
    std::vector<Prepared> prepared;
    for (const std::string& m : models) {
        loaded.push_back(load_probe_model(m));
        prepared.push_back(prepare(loaded.back(), m, request));
    }
    std::vector<ModelOverMixing> out;
    for (Prepared& p : prepared) {
        run(p, request);
        out.push_back(std::move(p.out));
    }
    return out;
}

nlohmann::json perturb_models_json(const std::vector<ModelOverMixing>& models) {
    nlohmann::json list = nlohmann::json::array();
    for (const ModelOverMixing& m : models) {
        nlohmann::json runs = nlohmann::json::array();
        for (const OverMixingRun& run : m.runs) {
            nlohmann::json j = over_mixing_json(run.result);
            j["sink"] = run.condition;
            runs.push_back(j);
        }
        nlohmann::json entry = {{"model", m.model},
                                {"source", m.source},
                                {"architecture", m.architecture},
                                {"design", m.design},
                                {"input", m.input},
                                {"runs", runs}};
        if (!m.prompt_ids.empty()) entry["prompt_ids"] = m.prompt_ids;
        nlohmann::json perturbations = nlohmann::json::array();
        for (const Perturbation& p : m.perturbations)
            perturbations.push_back({{"window", p.window}, {"position", p.first + 1}, {"tokens", p.replacement}});
        entry["perturbations"] = perturbations;
        list.push_back(entry);
    }
    return {{"schema", kPerturbSchema}, {"definitions", over_mixing_definitions()}, {"models", list}};
}

}  // namespace sinklab
