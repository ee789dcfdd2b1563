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

namespace sinklab::testing {

struct CommandResult {
    int exit_code = -1;
    std::string output;  // stdout and stderr together
};

inline std::string sinklab_binary() { return std::string(SINKLAB_BINARY_DIR) + "/sinklab"; }

inline CommandResult run_sinklab(const std::string& args) {
    const std::string command = sinklab_binary() + " " + args + " 2>&1";
    CommandResult result;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) return result;
    std::array<char, 4096> buffer;
    size_t n;
    while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
    const int status = ::pclose(pipe);
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) result.exit_code = 128 + WTERMSIG(status);
    return result;
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
