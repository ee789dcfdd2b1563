#include "probe/probe_input.h"

#include <charconv>

#include <fmt/format.h>

#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"
#include "tokenizer/tokenizer.h"

namespace sinklab {

InputSpec InputSpec::parse(const std::string& text) {
    const size_t colon = text.find(':');
    const std::string kind = text.substr(0, colon);
    const bool has_arg = colon != std::string::npos;
    const std::string arg = has_arg ? text.substr(colon + 1) : std::string();
    InputSpec spec;
    if (kind == "natural") {
        SINKLAB_CHECK(!has_arg || !arg.empty(), "probe", "--input natural:FILE needs a file name after ':'");
        spec.kind = InputKind::natural;
        spec.file = arg;
    } else if (kind == "random") {
        SINKLAB_CHECK(!has_arg, "probe", "--input random takes no argument (the ids are seeded by --seed)");
        spec.kind = InputKind::random;
    } else if (kind == "repeat") {
        spec.kind = InputKind::repeat;
        if (has_arg) {
            int64_t id = 0;
            const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), id);
            spec.repeat_id = id;
            SINKLAB_CHECK(ec == std::errc() && end == arg.data() + arg.size() && !arg.empty(), "probe",
                          "--input repeat:ID: '{}' is not a token id (an integer)", arg);
        }
    } else {
        fail("probe", "--input '{}': expected natural, natural:FILE, random, repeat or repeat:ID", text);
    }
    return spec;
}

std::string InputSpec::name() const {
    switch (kind) {
        case InputKind::natural: return file.empty() ? "natural" : "natural:" + file;
        case InputKind::random: return "random";
        case InputKind::repeat: return repeat_id ? fmt::format("repeat:{}", *repeat_id) : "repeat";
    }
    return "";
}

BosMode parse_bos_mode(const std::string& text) {
    if (text == "auto") return BosMode::automatic;
    if (text == "on") return BosMode::on;
    if (text == "off") return BosMode::off;
    fail("probe", "--bos '{}': expected auto, on or off", text);
}

std::string bos_mode_name(BosMode mode) {
    return mode == BosMode::automatic ? "auto" : mode == BosMode::on ? "on" : "off";
}

std::optional<int32_t> resolve_bos(BosMode mode, std::optional<int32_t> bos_id, bool by_default, int vocab_size) {
    if (mode == BosMode::off || (mode == BosMode::automatic && !by_default)) return std::nullopt;
    SINKLAB_CHECK(bos_id.has_value(), "probe", "--bos on: the model has no BOS token; use --bos off");
    SINKLAB_CHECK(*bos_id >= 0 && *bos_id < vocab_size, "probe",
                  "the model's BOS id {} is outside its vocabulary (size {}); use --bos off", *bos_id, vocab_size);
    return bos_id;
}

SampleFrame resolve_encoder_frame(BosMode mode, std::optional<int32_t> cls_id, std::optional<int32_t> sep_id,
                                  int vocab_size) {
    if (mode == BosMode::off || (mode == BosMode::automatic && !(cls_id && sep_id))) return {};
    SINKLAB_CHECK(cls_id && sep_id, "probe",
                  "--bos on: the encoder has no [CLS] / [SEP] tokens (neither its tokenizer nor its config names "
                  "them); use --bos off");
    for (const int32_t id : {*cls_id, *sep_id})
        SINKLAB_CHECK(id >= 0 && id < vocab_size, "probe",
                      "the encoder's special token id {} is outside its vocabulary (size {}); use --bos off", id,
                      vocab_size);
    SampleFrame frame(*cls_id);
    frame.last = *sep_id;
    return frame;
}

namespace {

void check_shape(int T, int N, const SampleFrame& frame) {
    SINKLAB_CHECK(T >= 2, "probe", "--seq-len {}: the metrics compare token 1 with the rest, so T must be at least 2",
                  T);
    SINKLAB_CHECK(T > frame.specials(), "probe", "--seq-len {}: the samples' {} special tokens leave no room for text",
                  T, frame.specials());
    SINKLAB_CHECK(N >= 1, "probe", "--samples {}: need at least one sample", N);
}

ProbeSamples empty_samples(int T, int N, const SampleFrame& frame) {
    ProbeSamples s;
    s.N = N;
    s.T = T;
    s.bos = frame.first;
    s.eos = frame.last;
    s.tokens.resize(static_cast<size_t>(N) * T);
    const bool encoder = frame.last.has_value();
    if (frame.first) s.specials.push_back({encoder ? "cls" : "bos", "", *frame.first, 1});
    if (frame.last) s.specials.push_back({"sep", "", *frame.last, T});
    return s;
}

// Writes the frame's tokens at their positions of every sample.
void place_frame(ProbeSamples& s) {
    for (int n = 0; n < s.N; ++n) {
        int32_t* tokens = s.tokens.data() + static_cast<size_t>(n) * s.T;
        if (s.bos) tokens[0] = *s.bos;
        if (s.eos) tokens[s.T - 1] = *s.eos;
    }
}

std::string frame_note(const ProbeSamples& s) {
    if (s.eos) return fmt::format(", framed by {} first and {} last", *s.bos, *s.eos);
    return s.bos ? fmt::format(", BOS {} first", *s.bos) : "";
}

}  // namespace

ProbeSamples natural_samples(const std::vector<int32_t>& ids, int T, int N, SampleFrame frame,
                             const std::string& source) {
    check_shape(T, N, frame);
    SINKLAB_CHECK(!ids.empty(), "probe", "{}: the text is empty; give a file with text in it", source);
    // text tokens one window consumes: T minus the frame's tokens; decoders also read the next token as a target
    const bool next_token_targets = !frame.last;
    const size_t text_tokens = static_cast<size_t>(T - frame.specials());
    const size_t window = text_tokens + (next_token_targets ? 1 : 0);
    SINKLAB_CHECK(ids.size() >= window, "probe",
                  "{}: {} tokens, but one window of --seq-len {} needs {}; give more text or a shorter --seq-len",
                  source, ids.size(), T, window);
    ProbeSamples s = empty_samples(T, N, frame);
    if (next_token_targets) s.targets.resize(s.tokens.size());
    const size_t span = ids.size() - window;
    const int skip = frame.first ? 1 : 0;  // BOS (CLS) takes position 1; BOS predicts text token 0
    for (int n = 0; n < N; ++n) {
        const size_t offset = N > 1 ? span * n / (N - 1) : 0;
        const int32_t* text = ids.data() + offset;
        int32_t* tokens = s.tokens.data() + static_cast<size_t>(n) * T;
        for (size_t t = 0; t < text_tokens; ++t) tokens[t + skip] = text[t];
        if (next_token_targets)
            for (int t = 0; t < T; ++t) s.targets[static_cast<size_t>(n) * T + t] = text[t + 1 - skip];
    }
    place_frame(s);
    const bool overlap = ids.size() < window * N;
    s.description = fmt::format("natural: {} windows of {} tokens from {} ({} tokens{}){}", N, T, source, ids.size(),
                                overlap ? ", windows overlap" : "", frame_note(s));
    return s;
}

ProbeSamples random_samples(int vocab_size, int T, int N, SampleFrame frame, uint64_t seed) {
    check_shape(T, N, frame);
    ProbeSamples s = empty_samples(T, N, frame);
    Rng rng(seed);
    // the stream of ids is that of an unframed run: position 1 draws nothing when BOS takes it
    for (int n = 0; n < N; ++n)
        for (int t = frame.first ? 1 : 0; t < T; ++t)
            s.tokens[static_cast<size_t>(n) * T + t] = static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab_size)));
    place_frame(s);
    s.description = fmt::format("random: {} sequences of {} uniform ids over {} (seed {}){}", N, T, vocab_size, seed,
                                frame_note(s));
    return s;
}

ProbeSamples repeat_samples(int64_t id, int vocab_size, int T, int N, SampleFrame frame) {
    check_shape(T, N, frame);
    SINKLAB_CHECK(id >= 0 && id < vocab_size, "probe", "--input repeat:{}: the id is outside the vocabulary (0..{})",
                  id, vocab_size - 1);
    ProbeSamples s = empty_samples(T, N, frame);
    std::fill(s.tokens.begin(), s.tokens.end(), static_cast<int32_t>(id));
    place_frame(s);
    s.description = fmt::format("repeat: id {} x {}{}", id, T, frame_note(s));
    return s;
}

int64_t default_repeat_id(const Tokenizer* tokenizer, int vocab_size) {
    if (tokenizer) {
        const std::vector<int32_t> ids = tokenizer->encode_ordinary("the");
        if (!ids.empty() && ids.front() >= 0 && ids.front() < vocab_size) return ids.front();
    }
    return vocab_size / 2;
}

void mask_for_masked_lm(ProbeSamples& s, int32_t mask_id, double rate, uint64_t seed) {
    SINKLAB_CHECK(rate > 0.0 && rate < 1.0, "probe", "the masked-LM rate must lie in (0, 1), got {}", rate);
    const int first = s.bos ? 1 : 0, last = s.T - (s.eos ? 1 : 0);  // text positions [first, last)
    const int n = last - first;
    const int masked = std::max(1, static_cast<int>(std::lround(rate * n)));
    s.loss_tokens = s.tokens;
    s.targets.assign(s.tokens.size(), -1);
    Rng rng(seed);
    std::vector<int> positions(n);
    for (int sample = 0; sample < s.N; ++sample) {
        for (int i = 0; i < n; ++i) positions[i] = first + i;
        for (int i = 0; i < masked; ++i) {  // the first `masked` of a seeded Fisher-Yates shuffle
            const int j = i + static_cast<int>(rng.below(static_cast<uint64_t>(n - i)));
            std::swap(positions[i], positions[j]);
            const size_t at = static_cast<size_t>(sample) * s.T + positions[i];
            s.targets[at] = s.tokens[at];
            s.loss_tokens[at] = mask_id;
        }
    }
    s.description += fmt::format("; masked-LM loss: {} of {} text tokens per sample become mask id {} ({:.0f}%, seed {})",
                                 masked, n, mask_id, 100.0 * rate, seed);
}

namespace {

ProbeSamples unnamed_probe_samples(const InputSpec& input, std::string_view text, const std::string& text_source,
                                   const Tokenizer* tokenizer, int vocab_size, int T, int N, SampleFrame frame,
                                   uint64_t seed) {
    switch (input.kind) {
        case InputKind::natural: {
            SINKLAB_CHECK(tokenizer, "probe",
                          "--input natural needs a tokenizer and the model's folder has none: pass --tokenizer PATH (random "
                          "and repeat inputs need none)");
            SINKLAB_CHECK(!text.empty(), "probe", "{}: the text is empty; give a file with text in it", text_source);
            const std::vector<int32_t> ids = tokenizer->encode(text);
            for (int32_t id : ids)
                SINKLAB_CHECK(id >= 0 && id < vocab_size, "probe",
                              "{}: the tokenizer produced id {}, outside the model's vocabulary (size {})", text_source,
                              id, vocab_size);
            return natural_samples(ids, T, N, frame, text_source);
        }
        case InputKind::random: return random_samples(vocab_size, T, N, frame, seed);
        case InputKind::repeat:
            return repeat_samples(input.repeat_id ? *input.repeat_id : default_repeat_id(tokenizer, vocab_size),
                                  vocab_size, T, N, frame);
    }
    fail("probe", "unknown input kind");
}

}  // namespace

ProbeSamples make_probe_samples(const InputSpec& input, std::string_view text, const std::string& text_source,
                                const Tokenizer* tokenizer, int vocab_size, int T, int N, SampleFrame frame,
                                uint64_t seed) {
    ProbeSamples samples = unnamed_probe_samples(input, text, text_source, tokenizer, vocab_size, T, N, frame, seed);
    if (tokenizer)
        for (SpecialPosition& special : samples.specials)
            if (special.id < tokenizer->vocab_size()) special.token = tokenizer->token_text(special.id);
    return samples;
}

NamedText natural_text(const InputSpec& input, const char* command) {
    if (input.kind != InputKind::natural) return {};
    if (!input.file.empty()) return {read_text_file(input.file, command), input.file};
    return default_validation_text();
}

}  // namespace sinklab
