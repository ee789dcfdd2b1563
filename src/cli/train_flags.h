#pragma once
// The `sinklab train` setting flags (one per key of train_settings()), shared by the commands that
// build training configurations: train and sweep.
#include <map>
#include <string>

#include <CLI/CLI.hpp>

namespace sinklab::cli {

// Adds --KEY VALUE for every training setting (--KEY / --no-KEY for the boolean ones); each flag
// given stores its value in `values` under its key. `values` must outlive the parse.
void add_train_setting_flags(CLI::App& command, std::map<std::string, std::string>& values);

}  // namespace sinklab::cli
