#pragma once
// Each command lives in its own file and registers itself on the CLI11 app.
#include <CLI/CLI.hpp>

namespace sinklab::cli {

void add_train_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_probe_command(CLI::App& app);
void add_perturb_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_stream_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_analyze_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_demo_command(CLI::App& app);

}  // namespace sinklab::cli
