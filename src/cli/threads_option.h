#pragma once
// --threads N, shared by the commands that compute: 0 = all cores, otherwise at most kMaxThreads.
#include <CLI/CLI.hpp>

namespace sinklab::cli {

constexpr int kMaxThreads = 1024;

CLI::Option* add_threads_option(CLI::App& command, int& threads);

}  // namespace sinklab::cli
