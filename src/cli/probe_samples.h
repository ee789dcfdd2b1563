#pragma once
// The samples of --input for a loaded model, as `probe` and `analyze` take them.
#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "io/corpus.h"
#include "probe/probe_input.h"
#include "probe/probe_model.h"

namespace sinklab::cli {

// --input, --seq-len, --samples, --bos, --seed, --tokenizer: the samples a command runs the model on.
struct SampleFlags {
    std::string input = "natural";
    int seq_len = 64;
    int samples = 100;
    std::string bos = "auto";
    uint64_t seed = 1234;
    std::string tokenizer;  // replaces the model's own tokenizer for natural input
};
void add_sample_options(CLI::App* cmd, SampleFlags& flags);

// The natural text of `input` and a name for it: the file, or the validation split of the default
// corpus; empty for random and repeat input. `command` names the command in errors.
NamedText natural_text(const InputSpec& input, const char* command);

// N samples of T tokens for `pm`: T checked against the model, `text` (natural_text's) tokenised
// by the model's tokenizer, BOS as `bos` says.
ProbeSamples probe_samples(const ProbeModel& pm, const InputSpec& input, const NamedText& text, BosMode bos, int T,
                           int N, uint64_t seed);

}  // namespace sinklab::cli
