#pragma once
// What a probe feeds the model (DESIGN.md section 4, "Inputs"): natural text cut into windows,
// uniform random ids, or one id repeated; N samples of T tokens, optionally starting with BOS.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/corpus.h"

namespace sinklab {

class Tokenizer;

enum class InputKind { natural, random, repeat };

struct InputSpec {
    InputKind kind = InputKind::natural;
    std::string file;        // natural: the text file; empty means the caller's default text
    std::optional<int64_t> repeat_id;  // repeat: the id written T times; none: default_repeat_id

    // "natural", "natural:FILE", "random", "repeat", "repeat:ID"; throws naming the flag.
    static InputSpec parse(const std::string& text);
    std::string name() const;  // the text parse() reads back
};

enum class BosMode { automatic, on, off };
BosMode parse_bos_mode(const std::string& text);  // "auto" | "on" | "off"
std::string bos_mode_name(BosMode mode);

// The BOS id to put at position 1, or none. `bos_id` is the model's BOS token (if it has one) and
// `by_default` whether its tokenizer adds it (Hugging Face's add_bos_token, sinklab's --bos models):
// `automatic` follows that; `on` needs a BOS id within the vocabulary.
std::optional<int32_t> resolve_bos(BosMode mode, std::optional<int32_t> bos_id, bool by_default, int vocab_size);

// The special tokens around every sample: a decoder's BOS at position 1, or an encoder's frame as
// its tokenizer builds an input, [CLS] (<s>) at position 1 and [SEP] (</s>) at position T.
struct SampleFrame {
    std::optional<int32_t> first, last;
    SampleFrame() = default;
    SampleFrame(std::nullopt_t) {}
    SampleFrame(std::optional<int32_t> bos) : first(bos) {}  // a decoder's BOS, or none
    SampleFrame(int32_t bos) : first(bos) {}
    int specials() const { return (first ? 1 : 0) + (last ? 1 : 0); }
};

// An encoder's frame under --bos: auto and on frame every sample ([CLS] first, [SEP] last; on
// needs both ids within the vocabulary, auto frames only when both exist), off frames none.
SampleFrame resolve_encoder_frame(BosMode mode, std::optional<int32_t> cls_id, std::optional<int32_t> sep_id,
                                  int vocab_size);

// A special token the samples hold at a fixed position.
struct SpecialPosition {
    std::string role;   // "bos" (a decoder's), "cls" or "sep" (an encoder's frame)
    std::string token;  // its text when the tokenizer is known ("[CLS]", "<s>"), else empty
    int32_t id = 0;
    int position = 0;   // 1-indexed
};

// N sequences of T tokens. Natural text also has targets for the loss of interventions: the token
// that follows each position (decoders), or after mask_for_masked_lm the masked-out tokens (encoders).
struct ProbeSamples {
    int N = 0, T = 0;
    std::vector<int32_t> tokens;   // (N, T)
    std::vector<int32_t> targets;  // (N, T) natural text; -1 where nothing is predicted; empty otherwise
    // (N, T) the input the loss reads when it is not `tokens`: the masked-LM input of encoders
    std::vector<int32_t> loss_tokens;
    std::optional<int32_t> bos;    // the id at position 1 of every sample, when one was added
    std::optional<int32_t> eos;    // the id at position T of every sample (an encoder's [SEP])
    std::vector<SpecialPosition> specials;  // bos and eos, where they are
    std::string description;       // one line for the terminal and JSON, e.g. "natural: 100 windows of ..."
};

// Natural text: windows evenly spaced over `ids` (overlapping only when the text holds fewer than N).
// A window is [BOS, x_0 .. x_{T-2}] with targets x_0 .. x_{T-1}, or without BOS x_0 .. x_{T-1} with
// targets x_1 .. x_T. An encoder's frame gives [CLS, x_0 .. x_{T-3}, SEP] and no targets (see
// mask_for_masked_lm). `source` names the text for errors (empty text, too short for one window).
ProbeSamples natural_samples(const std::vector<int32_t>& ids, int T, int N, SampleFrame frame,
                             const std::string& source);
// Uniform ids over [0, vocab_size), seeded; the frame's tokens at their positions.
ProbeSamples random_samples(int vocab_size, int T, int N, SampleFrame frame, uint64_t seed);
// `id` at every position but the frame's; throws for an id outside [0, vocab_size).
ProbeSamples repeat_samples(int64_t id, int vocab_size, int T, int N, SampleFrame frame);

// The masked-LM loss of an encoder (Devlin et al. 2019): in each sample, max(1, round(rate x n)) of
// its n text positions (the frame's tokens excluded), drawn uniformly by a generator seeded with
// `seed`, become `mask_id` in loss_tokens and are the only targets (the rest -1). Every chosen token
// becomes the mask (not BERT's 80/10/10 training mix), so the loss is a fixed function of the seed.
void mask_for_masked_lm(ProbeSamples& samples, int32_t mask_id, double rate, uint64_t seed);

// The id `--input repeat` writes when none is given: an ordinary token of the model's vocabulary,
// the first id of the word "the" through its tokenizer (byte models: 't', 116; GPT-2: "the", 1169),
// or, for a model without a tokenizer, the middle of the vocabulary (vocab_size / 2). Id 0 is no
// default: it is a control byte or a special token (<unk>, <pad>) in most vocabularies.
int64_t default_repeat_id(const Tokenizer* tokenizer, int vocab_size);

// The samples `input` stands for. `text` is the natural text (the file's or the default corpus's),
// tokenised by `tokenizer` (null when the model has none: natural input is then an error) and
// ignored by random and repeat; `text_source` names it in errors.
ProbeSamples make_probe_samples(const InputSpec& input, std::string_view text, const std::string& text_source,
                                const Tokenizer* tokenizer, int vocab_size, int T, int N, SampleFrame frame,
                                uint64_t seed);

// The natural text of `input` and a name for it: the file, or the validation split of the default
// corpus (io/corpus.h); empty for random and repeat input. `command` names the command in errors.
NamedText natural_text(const InputSpec& input, const char* command);

}  // namespace sinklab
