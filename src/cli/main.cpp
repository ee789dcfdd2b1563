// sinklab: measure, explain, train and exploit attention sinks.
// Only main() prints errors and chooses the exit code; the library throws sinklab::Error.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
    CLI::App app{"sinklab: a laboratory for attention sinks in transformer language models.\n"
                 "Run `sinklab <command> --help` for a command's flags."};
    app.require_subcommand(1);
    app.set_help_all_flag("--help-all", "Show the help of every command");
    sinklab::cli::add_train_command(app);
    sinklab::cli::add_sweep_command(app);
    sinklab::cli::add_probe_command(app);
    sinklab::cli::add_generate_command(app);
    sinklab::cli::add_tokenize_command(app);
    sinklab::cli::add_export_command(app);
    sinklab::cli::add_analyze_command(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const sinklab::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
