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

namespace {

void check_shape(int T, int N) {
    SINKLAB_CHECK(T >= 2, "probe", "--seq-len {}: the metrics compare token 1 with the rest, so T must be at least 2",
                  T);
    SINKLAB_CHECK(N >= 1, "probe", "--samples {}: need at least one sample", N);
}

ProbeSamples empty_samples(int T, int N, std::optional<int32_t> bos) {
    ProbeSamples s;
    s.N = N;
    s.T = T;
    s.bos = bos;
    s.tokens.resize(static_cast<size_t>(N) * T);
    return s;
}

std::string bos_note(std::optional<int32_t> bos) { return bos ? fmt::format(", BOS {} first", *bos) : ""; }

}  // namespace

ProbeSamples natural_samples(const std::vector<int32_t>& ids, int T, int N, std::optional<int32_t> bos,
                             const std::string& source) {
    check_shape(T, N);
    SINKLAB_CHECK(!ids.empty(), "probe", "{}: the text is empty; give a file with text in it", source);
    const size_t window = bos ? T : static_cast<size_t>(T) + 1;  // text tokens one window consumes
    SINKLAB_CHECK(ids.size() >= window, "probe",
                  "{}: {} tokens, but one window of --seq-len {} needs {}; give more text or a shorter --seq-len",
                  source, ids.size(), T, window);
    ProbeSamples s = empty_samples(T, N, bos);
    s.targets.resize(s.tokens.size());
    const size_t span = ids.size() - window;
    for (int n = 0; n < N; ++n) {
        const size_t offset = N > 1 ? span * n / (N - 1) : 0;
        const int32_t* text = ids.data() + offset;
        int32_t* tokens = s.tokens.data() + static_cast<size_t>(n) * T;
        int32_t* targets = s.targets.data() + static_cast<size_t>(n) * T;
        const int skip = bos ? 1 : 0;  // BOS takes position 1 and predicts text token 0
        if (bos) tokens[0] = *bos;
        for (int t = skip; t < T; ++t) tokens[t] = text[t - skip];
        for (int t = 0; t < T; ++t) targets[t] = text[t + 1 - skip];
    }
    const bool overlap = ids.size() < window * N;
    s.description = fmt::format("natural: {} windows of {} tokens from {} ({} tokens{}){}", N, T, source, ids.size(),
                                overlap ? ", windows overlap" : "", bos_note(bos));
    return s;
}

ProbeSamples random_samples(int vocab_size, int T, int N, std::optional<int32_t> bos, uint64_t seed) {
    check_shape(T, N);
    ProbeSamples s = empty_samples(T, N, bos);
    Rng rng(seed);
    for (int n = 0; n < N; ++n)
        for (int t = 0; t < T; ++t)
            s.tokens[static_cast<size_t>(n) * T + t] =
                bos && t == 0 ? *bos : static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab_size)));
    s.description = fmt::format("random: {} sequences of {} uniform ids over {} (seed {}){}", N, T, vocab_size, seed,
                                bos_note(bos));
    return s;
}

ProbeSamples repeat_samples(int64_t id, int vocab_size, int T, int N, std::optional<int32_t> bos) {
    check_shape(T, N);
    SINKLAB_CHECK(id >= 0 && id < vocab_size, "probe", "--input repeat:{}: the id is outside the vocabulary (0..{})",
                  id, vocab_size - 1);
    ProbeSamples s = empty_samples(T, N, bos);
    for (int n = 0; n < N; ++n)
        for (int t = 0; t < T; ++t)
            s.tokens[static_cast<size_t>(n) * T + t] = bos && t == 0 ? *bos : static_cast<int32_t>(id);
    s.description = fmt::format("repeat: id {} x {}{}", id, T, bos_note(bos));
    return s;
}

int64_t default_repeat_id(const Tokenizer* tokenizer, int vocab_size) {
    if (tokenizer) {
        const std::vector<int32_t> ids = tokenizer->encode_ordinary("the");
        if (!ids.empty() && ids.front() >= 0 && ids.front() < vocab_size) return ids.front();
    }
    return vocab_size / 2;
}

ProbeSamples make_probe_samples(const InputSpec& input, std::string_view text, const std::string& text_source,
                                const Tokenizer* tokenizer, int vocab_size, int T, int N, std::optional<int32_t> bos,
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
            return natural_samples(ids, T, N, bos, text_source);
        }
        case InputKind::random: return random_samples(vocab_size, T, N, bos, seed);
        case InputKind::repeat:
            return repeat_samples(input.repeat_id ? *input.repeat_id : default_repeat_id(tokenizer, vocab_size),
                                  vocab_size, T, N, bos);
    }
    fail("probe", "unknown input kind");
}

NamedText natural_text(const InputSpec& input, const char* command) {
    if (input.kind != InputKind::natural) return {};
    if (!input.file.empty()) return {read_text_file(input.file, command), input.file};
    return default_validation_text();
}

}  // namespace sinklab
