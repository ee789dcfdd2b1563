// sinklab: measure, explain, train and exploit attention sinks.
// Only main() prints errors and chooses the exit code; the library throws sinklab::Error.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <new>
#include <string>
#include <string_view>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "core/error.h"

namespace {

// OpenMP threads that spin while they wait starve each other as soon as anything else runs on the
// cores (a second sinklab, a compiler, ctest -j): an analyze took 131 s instead of 29 s. Sleeping
// waiters cost nothing measurable on an idle machine (tiny training: 17,500 tokens/s either way).
// libgomp reads the policy once, before main, so the process starts again with it set; a policy
// the user chose is kept.
void prefer_passive_openmp_waits(char** argv) {
    if (std::getenv("OMP_WAIT_POLICY")) return;
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    ::execv("/proc/self/exe", argv);  // returns only on failure: then run as we are
}

// An error is one line whatever the file it names holds: control characters (a newline in a
// token's spelling) are shown as \xNN.
std::string one_line(std::string_view message) {
    std::string line;
    for (const char c : message) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) line += fmt::format("\\x{:02X}", byte);
        else line += c;
    }
    return line;
}

}  // namespace

int main(int argc, char** argv) {
    prefer_passive_openmp_waits(argv);
    // A file-size limit (ulimit -f) or a full disk then shows as a failed write, which sinklab
    // reports and recovers from (an interrupted checkpoint keeps the previous one), instead of
    // SIGXFSZ killing the process mid-write.
    std::signal(SIGXFSZ, SIG_IGN);
    CLI::App app{"sinklab: a laboratory for attention sinks in transformer language models.\n"
                 "Run `sinklab <command> --help` for a command's flags."};
    app.require_subcommand(1);
    app.set_help_all_flag("--help-all", "Show the help of every command");
    // A flag error is one line, like every other error.
    app.failure_message([](const CLI::App*, const CLI::Error& e) {
        return "error: " + std::string(e.what()) + " (see --help)\n";
    });
    sinklab::cli::add_train_command(app);
    sinklab::cli::add_sweep_command(app);
    sinklab::cli::add_probe_command(app);
    sinklab::cli::add_perturb_command(app);
    sinklab::cli::add_generate_command(app);
    sinklab::cli::add_stream_command(app);
    sinklab::cli::add_tokenize_command(app);
    sinklab::cli::add_export_command(app);
    sinklab::cli::add_analyze_command(app);
    sinklab::cli::add_report_command(app);
    sinklab::cli::add_demo_command(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const sinklab::Error& e) {
        std::fprintf(stderr, "error: %s\n", one_line(e.what()).c_str());
        return 1;
    } catch (const std::bad_alloc&) {
        // Sizes are checked before the large allocations; this is memory running out anyway.
        std::fprintf(stderr, "error: out of memory: the machine could not provide the memory this command needed "
                             "(a smaller model, --batch or --seq-len needs less)\n");
        return 1;
    } catch (const std::filesystem::filesystem_error& e) {
        std::fprintf(stderr, "error: %s: %s\n", one_line(e.path1().string()).c_str(), e.code().message().c_str());
        return 1;
    } catch (const std::exception& e) {
        // A check sinklab is missing: say so rather than pass a library's message off as an answer.
        std::fprintf(stderr, "error: unexpected failure (%s); please report it with the command line\n",
                     one_line(e.what()).c_str());
        return 1;
    }
    return 0;
}
