#pragma once
// The flags of the samples `probe` and `analyze` run a model on (probe/probe.h: probe_samples).
#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

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

}  // namespace sinklab::cli
