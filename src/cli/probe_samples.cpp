#include "cli/probe_samples.h"

namespace sinklab::cli {

void add_sample_options(CLI::App* cmd, SampleFlags& flags) {
    cmd->add_option("--input", flags.input,
                    "natural[:FILE] (text through the model's tokenizer; default: the default corpus's validation "
                    "split), random (uniform ids, seeded), repeat[:ID] (one id T times, default 0)")
        ->capture_default_str();
    cmd->add_option("--seq-len", flags.seq_len, "tokens per sample T")->capture_default_str();
    cmd->add_option("--samples", flags.samples, "samples N")->capture_default_str();
    cmd->add_option("--bos", flags.bos,
                    "auto|on|off: put the model's BOS token first (auto: as its tokenizer does); an encoder's samples "
                    "are framed as its tokenizer frames a sequence, [CLS] first and [SEP] last (off: not framed)")
        ->capture_default_str();
    cmd->add_option("--seed", flags.seed, "seed of --input random")->capture_default_str();
    cmd->add_option("--tokenizer", flags.tokenizer,
                    "tokenizer for natural input instead of the model's own (tokenizer.json, vocab.json + merges.txt "
                    "folder, tokenizer.model, .tiktoken, llama2.c tokenizer .bin); its vocabulary must fit the model's");
}

}  // namespace sinklab::cli
