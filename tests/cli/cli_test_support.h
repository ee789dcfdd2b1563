#pragma once
// Runs the built `sinklab` binary and captures its exit code and output, for end-to-end tests.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

#include "../support/run_command.h"

namespace sinklab::testing {

using test::CommandResult;

inline std::string sinklab_binary() { return std::string(SINKLAB_BINARY_DIR) + "/sinklab"; }

inline CommandResult run_sinklab(const std::string& args) { return test::run_command(sinklab_binary() + " " + args); }

// A small training text of `lines` numbered lines in dir/corpus.txt; returns its path.
inline std::filesystem::path write_corpus(const std::filesystem::path& dir, int lines) {
    std::ofstream out(dir / "corpus.txt");
    for (int i = 0; i < lines; ++i)
        out << "Line " << i << ": the quick brown fox jumps over the lazy dog, " << (i * 7919) % 1000 << ".\n";
    return dir / "corpus.txt";
}

inline std::filesystem::path fresh_temp_dir(const std::string& name) {
    auto dir = std::filesystem::temp_directory_path() / ("sinklab_cli_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace sinklab::testing
