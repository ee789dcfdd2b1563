#pragma once
// Runs the built `sinklab` binary and captures its exit code and output, for end-to-end tests.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "../support/run_command.h"
#include "model/checkpoint.h"

namespace sinklab::testing {

using test::CommandResult;

inline std::string sinklab_binary() { return std::string(SINKLAB_BINARY_DIR) + "/sinklab"; }

inline CommandResult run_sinklab(const std::string& args) { return test::run_command(sinklab_binary() + " " + args); }

// A small byte-level model folder dir/name with learned positions (64 of them) and a BOS token
// (vocab 257), random weights of seed 3, attention `design`.
inline std::filesystem::path make_byte_model(const std::filesystem::path& dir, const std::string& name,
                                             const std::string& design = "softmax") {
    ModelConfig c;
    c.vocab_size = 257;
    c.d_model = 32;
    c.n_layers = 2;
    c.n_heads = c.n_kv_heads = 2;
    c.max_seq_len = 64;
    c.attention = AttentionSpec::parse(design);
    Transformer model(c);
    model.init_weights(3);
    save_model_folder(model, dir / name);
    return dir / name;
}

// A bad input ends the command with exit code 1 and one line, "error: [<module>] ...", naming the
// problem (`message` is part of it).
inline void expect_one_clear_error(const CommandResult& r, const std::string& message, const std::string& module) {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_EQ(r.output.rfind("error: [" + module + "] ", 0), 0u) << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << "one line: " << r.output;
}

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

// The lines of a training run's log (OUT/train_log.jsonl), parsed, in order.
inline std::vector<nlohmann::json> train_log_lines(const std::filesystem::path& run) {
    std::vector<nlohmann::json> lines;
    std::istringstream in(read_file(run / "train_log.jsonl"));
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
}

}  // namespace sinklab::testing
