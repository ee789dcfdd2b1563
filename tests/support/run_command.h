#pragma once
// Runs a shell command and captures its exit code and its output (stdout and stderr together):
// the CLI end-to-end tests run `sinklab`, the oracle tests the Python references.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace sinklab::test {

inline const char* kPython = "/usr/bin/python3";  // Debian's python3-torch, a declared test dependency

struct CommandResult {
    int exit_code = -1;  // 128 + the signal when one ended it; -1 when it could not start
    std::string output;
};

inline CommandResult run_command(const std::string& command) {
    CommandResult result;
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (!pipe) return result;
    std::array<char, 4096> buffer;
    size_t n;
    while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
    const int status = ::pclose(pipe);
    if (WIFEXITED(status))
        result.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        result.exit_code = 128 + WTERMSIG(status);
    return result;
}

}  // namespace sinklab::test
