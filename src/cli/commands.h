#pragma once
// Each command lives in its own file and registers itself on the CLI11 app.
#include <CLI/CLI.hpp>

namespace sinklab::cli {

void add_train_command(CLI::App& app);

}  // namespace sinklab::cli
