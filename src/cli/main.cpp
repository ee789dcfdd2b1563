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
#include "distributed/communicator.h"

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

// Under an MPI launcher every rank runs main: a failure that every rank meets alike (a bad flag, an
// AgreedError) is printed by rank 0 alone, and each rank ends normally; a failure of one rank alone
// is printed with its rank and ends the whole job (the other ranks may be waiting for it).
bool prints_shared_errors() { return sinklab::launch_info().rank == 0 && sinklab::job().is_root(); }

int fail_alone(const std::string& what) {
    const sinklab::Communicator& ranks = sinklab::job();
    if (!ranks.distributed()) {
        std::fprintf(stderr, "error: %s\n", what.c_str());
        return 1;
    }
    std::fprintf(stderr, "error: rank %d of %d: %s\n", ranks.rank(), ranks.size(), what.c_str());
    std::fflush(stderr);
    sinklab::abort_job(1);
}

// Only train and sweep run distributed; under a launcher the others would run once per rank.
void refuse_other_commands_under_a_launcher(int argc, char** argv) {
    const sinklab::LaunchInfo launch = sinklab::launch_info();
    if (!launch.launched || launch.size == 1 || argc < 2 || argv[1][0] == '-') return;
    const std::string command = argv[1];
    if (command != "train" && command != "sweep")
        throw sinklab::AgreedError(fmt::format(
            "sinklab {} runs as one process: start it without mpirun or srun (train and sweep run on several ranks)",
            command));
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
    int code = 0;
    try {
        refuse_other_commands_under_a_launcher(argc, argv);
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        code = prints_shared_errors() ? app.exit(e) : e.get_exit_code();
    } catch (const sinklab::AgreedError& e) {
        if (prints_shared_errors()) std::fprintf(stderr, "error: %s\n", one_line(e.what()).c_str());
        code = 1;
    } catch (const sinklab::Error& e) {
        return fail_alone(one_line(e.what()));
    } catch (const std::bad_alloc&) {
        // Sizes are checked before the large allocations; this is memory running out anyway.
        return fail_alone("out of memory: the machine could not provide the memory this command needed "
                          "(a smaller model, --batch or --seq-len needs less)");
    } catch (const std::filesystem::filesystem_error& e) {
        return fail_alone(one_line(e.path1().string()) + ": " + e.code().message());
    } catch (const std::exception& e) {
        // A check sinklab is missing: say so rather than pass a library's message off as an answer.
        return fail_alone(fmt::format("unexpected failure ({}); please report it with the command line",
                                      one_line(e.what())));
    }
    sinklab::end_job();
    return code;
}
