#pragma once
// --attention-kernel, as the commands that run a model's forward take it.
#include <string>

#include <CLI/CLI.hpp>

namespace sinklab::cli {

// --attention-kernel auto|materialised|blockwise (and its older name --attention-path) into `kernel`;
// parse it with parse_attention_kernel (attention/attention_kernel.h).
void add_attention_kernel_option(CLI::App* cmd, std::string& kernel);

}  // namespace sinklab::cli
