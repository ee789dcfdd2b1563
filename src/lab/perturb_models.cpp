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

// The frame around every input: a decoder's BOS first, or an encoder's [CLS] ... [SEP] (<s> ... </s>)
// as sample_frame resolves --bos.
std::vector<int32_t> framed(const SampleFrame& frame, std::vector<int32_t> ids) {
    if (frame.first) ids.insert(ids.begin(), *frame.first);
    if (frame.last) ids.push_back(*frame.last);
    return ids;
}

// An encoder's special ids, which random substitutions never write: the frame, the tokenizer's
// [CLS] [SEP] [MASK] [PAD] [UNK], and the padding id (RoBERTa's positions skip it).
std::vector<int32_t> encoder_special_ids(const ProbeModel& pm, const SampleFrame& frame) {
    std::vector<int32_t> ids;
    for (const std::optional<int32_t>& id : {frame.first, frame.last, pm.cls_id, pm.sep_id, pm.mask_id})
        if (id) ids.push_back(*id);
    if (const Tokenizer* t = pm.tokenizer.get())
        for (const std::optional<int32_t>& id : {t->pad_id, t->unk_id})
            if (id) ids.push_back(*id);
    if (pm.model->config().padding_id) ids.push_back(*pm.model->config().padding_id);
    return ids;
}

// An encoder's masked-LM loss input for the set's windows (mask_for_masked_lm, BERT's 15%, seeded,
// the frame never masked), when its tokenizer has a mask token.
void add_masked_lm_loss(PerturbationSet& set, const ProbeModel& pm, const SampleFrame& frame, uint64_t seed) {
    if (!pm.mask_id) {
        set.loss_description = "no masked-LM loss: the tokenizer names no mask token";
        return;
    }
    ProbeSamples windows;
    windows.N = set.window_count();
    windows.T = set.T;
    windows.tokens = set.windows;
    windows.bos = frame.first;
    windows.eos = frame.last;
    mask_for_masked_lm(windows, *pm.mask_id, kMaskedLmRate, seed);
    set.loss = "masked_lm";
    set.loss_tokens = std::move(windows.loss_tokens);
    set.loss_targets = std::move(windows.targets);
    const long masked = std::count_if(set.loss_targets.begin(), set.loss_targets.begin() + set.T,
                                      [](int32_t target) { return target >= 0; });
    set.loss_description = fmt::format(
        "masked-LM loss: in each window {} of its {} text tokens become the mask token {} ({:.0f}%, seed {}; the "
        "frame is never masked)",
        masked, set.T - frame.specials(), *pm.mask_id, 100.0 * kMaskedLmRate, seed);
}

PerturbationSet prompt_set(const ProbeModel& pm, const std::string& name, const PerturbRequest& r,
                           const SampleFrame& frame, std::vector<int32_t>& prompt_ids) {
    SINKLAB_CHECK(pm.tokenizer, "perturb", "--prompt needs the model's tokenizer, and {} has none (use --random)", name);
    const ModelConfig& c = pm.model->config();
    const int V = c.vocab_size;
    prompt_ids = framed(frame, pm.tokenizer->encode(r.prompt));
    const int T = static_cast<int>(prompt_ids.size());
    SINKLAB_CHECK(T > frame.specials(), "perturb", "--prompt: the prompt has no tokens");
    check_probe_seq_len(c, T);
    for (int32_t id : prompt_ids)
        SINKLAB_CHECK(id >= 0 && id < V, "perturb", "{}: its tokenizer gave id {}, outside the vocabulary (size {})",
                      name, id, V);
    if (r.replace.empty()) {
        SINKLAB_CHECK(r.position <= T, "perturb", "--position {}: the prompt has {} tokens for {} (positions 1..{}{})",
                      r.position, T, name, T,
                      frame.last ? ", [CLS] first and [SEP] last" : frame.first ? ", BOS first" : "");
        SINKLAB_CHECK(r.token < V, "perturb", "--token {}: outside the vocabulary of {} (0..{})", r.token, name, V - 1);
        if (!c.causal) {
            // an encoder's frame stays as its tokenizer builds it
            const bool frame_position = (frame.first && r.position == 1) || (frame.last && r.position == T);
            SINKLAB_CHECK(!frame_position, "perturb",
                          "--position {}: that is the {} of {}'s frame, which stays; perturb a text token (positions "
                          "{}..{})",
                          r.position, r.position == 1 ? "first token ([CLS] / <s>)" : "last token ([SEP] / </s>)", name,
                          frame.first ? 2 : 1, frame.last ? T - 1 : T);
            for (const std::optional<int32_t>& id : {frame.first, frame.last, c.padding_id})
                SINKLAB_CHECK(!id || r.token != *id, "perturb",
                              "--token {}: {}'s frame or padding token; write a text token (or the mask token)",
                              r.token, name);
        }
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
    const std::vector<int32_t> perturbed = framed(frame, pm.tokenizer->encode(edited));
    SINKLAB_CHECK(perturbed.size() == prompt_ids.size(), "perturb",
                  "--replace '{}': {}'s tokenizer makes {} tokens of the prompt and {} of the edited one; replace a "
                  "word by one of the same token length",
                  r.replace, name, prompt_ids.size(), perturbed.size());
    // identical prompts: the no-op edit sits where OLD starts (a text token: never an encoder's [SEP])
    const int prefix = static_cast<int>((frame.first ? 1 : 0) + pm.tokenizer->encode(r.prompt.substr(0, at)).size());
    const int start = std::min(T - 1 - (frame.last ? 1 : 0), prefix);
    return prompt_perturbation(prompt_ids, perturbed, start,
                               fmt::format("prompt of {} tokens, '{}' replaced by '{}'", T, old_text, new_text));
}

PerturbationSet random_set(const ProbeModel& pm, const std::string& name, const PerturbRequest& r,
                           const SampleFrame& frame) {
    const ModelConfig& c = pm.model->config();
    SINKLAB_CHECK(pm.tokenizer, "perturb",
                  "--random draws its windows from natural text through the model's tokenizer, and {} has none (its "
                  "folder holds no tokenizer files)",
                  name);
    const int W = (r.random + r.per_window - 1) / r.per_window;
    check_probe_seq_len(c, r.seq_len);
    const ProbeSamples windows = make_probe_samples(InputSpec{}, r.text.text, r.text.source, pm.tokenizer.get(),
                                                    c.vocab_size, r.seq_len, W, frame, r.seed);
    // A decoder: never the first token (the sink of a model without BOS), nor with BOS the first
    // text token, which drop-bos makes the first; the last has no later token. An encoder: every
    // text token, its frame spared, and no special id written.
    const int first_position = c.causal ? (frame.first ? 2 : 1) : (frame.first ? 1 : 0);
    const int last_position = c.causal ? r.seq_len - 2 : r.seq_len - 1 - (frame.last ? 1 : 0);
    std::vector<int32_t> excluded;
    if (frame.first) excluded.push_back(*frame.first);
    if (!c.causal) excluded = encoder_special_ids(pm, frame);
    PerturbationSet set = random_perturbations(windows.tokens, r.seq_len, r.random, r.per_window, first_position,
                                               c.vocab_size, excluded, r.seed, last_position);
    std::string framing;
    if (frame.first && frame.last)
        framing = fmt::format(", framed by {} ({}) ... {} ({})", pm.tokenizer->token_text(*frame.first), *frame.first,
                              pm.tokenizer->token_text(*frame.last), *frame.last);
    else if (frame.first)
        framing = fmt::format(", BOS {} first", *frame.first);
    set.description += fmt::format(" from {}{}", r.text.source, framing);
    return set;
}

Prepared prepare(ProbeModel& pm, const std::string& name, const PerturbRequest& r) {
    const ModelConfig& c = pm.model->config();
    // A decoder's BOS, or an encoder's [CLS] ... [SEP] frame; an encoder's change is measured on both
    // sides of the perturbed tokens (measure_over_mixing reads the model's mask).
    const SampleFrame frame = sample_frame(pm, r.bos);
    const std::optional<int32_t> bos = frame.first;
    Prepared p;
    p.out.model = name;
    p.out.source = pm.info.source;
    p.out.architecture = pm.info.architecture;
    p.out.design = c.attention.name();
    PerturbationSet set =
        r.uses_prompt() ? prompt_set(pm, name, r, frame, p.out.prompt_ids) : random_set(pm, name, r, frame);
    // an encoder's interventions are scored with the masked-LM loss on the clean windows
    if (!c.causal) add_masked_lm_loss(set, pm, frame, r.seed);
    p.out.input = set.description;
    p.out.loss_input = set.loss_description;
    p.out.perturbations = set.perturbations;
    for (const SinkIntervention& s : r.without_sink) {
        Condition cond;
        cond.name = s.name();
        cond.model = pm.model.get();
        cond.set = set;
        const std::string flag = "--without-sink " + s.name();
        switch (s.kind) {
            case SinkInterventionKind::drop_bos:
                SINKLAB_CHECK(bos, "perturb", "{}: the inputs of {} have no {} (its tokenizer adds none, or "
                                              "--bos off); use mask-first:1",
                              flag, name, c.causal ? "BOS token" : "[CLS] / <s> frame");
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
        if (!m.loss_input.empty()) entry["loss_input"] = m.loss_input;
        nlohmann::json perturbations = nlohmann::json::array();
        for (const Perturbation& p : m.perturbations)
            perturbations.push_back({{"window", p.window}, {"position", p.first + 1}, {"tokens", p.replacement}});
        entry["perturbations"] = perturbations;
        list.push_back(entry);
    }
    return {{"schema", kPerturbSchema}, {"definitions", over_mixing_definitions()}, {"models", list}};
}

}  // namespace sinklab
