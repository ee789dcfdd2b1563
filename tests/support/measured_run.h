#pragma once
// Runs a command as a child process and measures what the hostile-input tests promise: its exit
// code and output, its wall time, and its peak resident memory (ru_maxrss from wait4, so the
// child's own peak, whatever it allocated and freed). Optionally under a file-size limit
// (RLIMIT_FSIZE), the test's stand-in for a full disk.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <string>

namespace sinklab::test {

struct MeasuredRun {
    int exit_code = -1;  // 128 + the signal when one ended it; -1 when it could not start
    std::string output;  // stdout and stderr together
    double seconds = 0.0;
    double peak_megabytes = 0.0;
};

struct RunLimits {
    long file_size_bytes = 0;  // RLIMIT_FSIZE for the child (0: none)
};

// `command` runs under /bin/sh -c "exec <command>": the measured process is the command itself.
inline MeasuredRun run_measured(const std::string& command, RunLimits limits = {}) {
    MeasuredRun run;
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) return run;
    const auto start = std::chrono::steady_clock::now();
    const pid_t pid = ::fork();
    if (pid < 0) return run;
    if (pid == 0) {
        ::dup2(pipe_fds[1], STDOUT_FILENO);
        ::dup2(pipe_fds[1], STDERR_FILENO);
        ::close(pipe_fds[0]);
        ::close(pipe_fds[1]);
        const int null_input = ::open("/dev/null", O_RDONLY);
        if (null_input >= 0) ::dup2(null_input, STDIN_FILENO);
        if (limits.file_size_bytes > 0) {
            const rlimit limit{static_cast<rlim_t>(limits.file_size_bytes), static_cast<rlim_t>(limits.file_size_bytes)};
            ::setrlimit(RLIMIT_FSIZE, &limit);
        }
        const std::string script = "exec " + command;
        ::execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(pipe_fds[1]);
    std::array<char, 4096> buffer;
    ssize_t n;
    while ((n = ::read(pipe_fds[0], buffer.data(), buffer.size())) > 0) run.output.append(buffer.data(), n);
    ::close(pipe_fds[0]);
    int status = 0;
    rusage usage{};
    ::wait4(pid, &status, 0, &usage);
    run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    run.peak_megabytes = static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
    if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) run.exit_code = 128 + WTERMSIG(status);
    return run;
}

}  // namespace sinklab::test
