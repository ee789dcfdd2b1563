// The reproducers of issue 23, each run as a user would run it: one clear line naming the file or
// flag, a non-zero exit, no crash, in under 2 s and under 200 MB of peak memory (measured on the
// child process), whatever the file or flag asks for.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>

#include "../support/measured_run.h"
#include "../support/scratch_dir.h"
#include "cli/cli_test_support.h"

namespace sinklab::testing {
namespace {

namespace fs = std::filesystem;

constexpr double kMaxSeconds = 2.0;
constexpr double kMaxMegabytes = 200.0;

void write_bytes(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Runs `sinklab <args>` and checks the promise: a failure in one line that contains every part of
// `expected`, quickly and in little memory.
void expect_refused(const std::string& args, std::initializer_list<std::string> expected) {
    SCOPED_TRACE("sinklab " + args);
    const test::MeasuredRun run = test::run_measured(sinklab_binary() + " " + args);
    std::printf("  %.2f s, %3.0f MB peak: %s", run.seconds, run.peak_megabytes, run.output.c_str());
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_LT(run.exit_code, 128) << "killed by a signal: " << run.output;
    EXPECT_EQ(std::count(run.output.begin(), run.output.end(), '\n'), 1) << run.output;
    EXPECT_EQ(run.output.rfind("error: ", 0), 0u) << run.output;
    for (const std::string& part : expected) EXPECT_NE(run.output.find(part), std::string::npos) << run.output;
    EXPECT_LT(run.seconds, kMaxSeconds) << run.output;
    EXPECT_LT(run.peak_megabytes, kMaxMegabytes) << run.output;
}

// --- Tokenizer files that ask for huge tables -------------------------------------------------

TEST(HostileReproducers, TwelveByteLlama2cTokenizer) {
    // max_token_length 0x7fffffff, score 0, then a length of 0x7ffffffe with no text after it.
    test::ScratchDir dir;
    write_bytes(dir / "t.bin", std::string("\xff\xff\xff\x7f\0\0\0\0\xfe\xff\xff\x7f", 12));
    expect_refused("tokenize --tokenizer " + (dir / "t.bin").string() + " hi",
                   {(dir / "t.bin").string(), "ends inside the text of token 0"});
}

TEST(HostileReproducers, VocabJsonWithAHugeId) {
    test::ScratchDir dir;
    write_bytes(dir / "vocab.json", R"({"a": 150000000})");
    write_bytes(dir / "merges.txt", "#version: 0.2\n");
    expect_refused("tokenize --tokenizer " + dir.path().string() + " hi",
                   {"vocab.json", "token \"a\" has id 150000000, outside [0, 2097152)"});
    // A spelling with a newline in it still makes a one-line error.
    write_bytes(dir / "vocab.json", R"({"a\nb": 150000000})");
    expect_refused("tokenize --tokenizer " + dir.path().string() + " hi", {"token \"a\\x0Ab\" has id 150000000"});
}

TEST(HostileReproducers, VocabJsonIdsThatDoNotFitOrAreNotIntegers) {
    test::ScratchDir dir;
    write_bytes(dir / "merges.txt", "#version: 0.2\n");
    // 2^31 - 1 overflowed max_id + 1; 22666666666 was cut to 32 bits; 1e300 was a float-to-int UB.
    for (const auto& [id, message] : {std::pair<std::string, std::string>{"2147483647", "has id 2147483647, outside"},
                                      {"22666666666", "has id 22666666666, outside"},
                                      {"-1", "has id -1, outside"},
                                      {"1e300", "has id 1e+300, not an integer"},
                                      {"2.5", "has id 2.5, not an integer"}}) {
        write_bytes(dir / "vocab.json", "{\"a\": " + id + "}");
        expect_refused("tokenize --tokenizer " + dir.path().string() + " hi", {"vocab.json", message});
    }
}

TEST(HostileReproducers, TokenizerJsonWithAHugeId) {
    test::ScratchDir dir;
    write_bytes(dir / "tokenizer.json",
                R"({"model": {"type": "BPE", "vocab": {"a": 300000000}, "merges": []},
                    "pre_tokenizer": {"type": "ByteLevel"}})");
    expect_refused("tokenize --tokenizer " + (dir / "tokenizer.json").string() + " hi",
                   {"tokenizer.json", "token \"a\" has id 300000000, outside [0, 2097152)"});
    write_bytes(dir / "tokenizer.json",
                R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"},
                    "added_tokens": [{"id": 2147483647, "content": "<s>"}]})");
    expect_refused("tokenize --tokenizer " + (dir / "tokenizer.json").string() + " hi",
                   {"tokenizer.json", "added token \"<s>\" has id 2147483647, outside"});
}

TEST(HostileReproducers, FifteenByteTiktokenFile) {
    test::ScratchDir dir;
    write_bytes(dir / "cl100k_base.tiktoken", "YQ== 150000000\n");
    ASSERT_EQ(fs::file_size(dir / "cl100k_base.tiktoken"), 15u);
    expect_refused("tokenize --tokenizer " + (dir / "cl100k_base.tiktoken").string() + " hi",
                   {"cl100k_base.tiktoken line 1", "rank 150000000 is outside [0, 2097152)"});
}

// --- Sweeps --------------------------------------------------------------------------------------

TEST(HostileReproducers, SweepOfTenMillionRunsIsRefusedBeforeExpanding) {
    test::ScratchDir dir;
    std::string axes = "[axes]\n";
    for (const char* key : {"lr", "wd", "beta1", "beta2", "clip", "min-lr", "init-std"}) {
        axes += std::string(key) + " = [";
        for (int v = 1; v <= 10; ++v) axes += (v > 1 ? ", " : "") + std::to_string(v) + "e-3";
        axes += "]\n";
    }
    write_bytes(dir / "huge.toml", "[base]\nsteps = 1\nseq-len = 1000000000\n" + axes);
    expect_refused("sweep " + (dir / "huge.toml").string() + " --out " + (dir / "out").string(),
                   {"huge.toml [axes]", "10000000 runs", "10 x 10 x 10 x 10 x 10 x 10 x 10", "limit of 1000"});
    // Within the limit, the first run's bad value is named at once.
    write_bytes(dir / "bad.toml", "[base]\nsteps = 1\nwindow = 99999\n[axes]\nlr = [1e-3, 2e-3, 3e-3]\n");
    expect_refused("sweep " + (dir / "bad.toml").string() + " --out " + (dir / "out").string(),
                   {"bad.toml, run 1 of 3", "window (99999) is longer than seq-len"});
}

// --- Sizes, numbers and paths on the command line -----------------------------------------------

TEST(HostileReproducers, SizesBeyondTheMachineNameWhatTheyNeed) {
    test::ScratchDir dir;
    const fs::path data = write_corpus(dir.path(), 400);
    const std::string run = "train --quiet --data " + data.string() + " --out " + (dir / "run").string();
    expect_refused(run + " --seq-len 1000000000", {"[train]", "seq-len 1000000000", "needs", "GB, this machine has"});
    expect_refused(run + " --batch 2000000000", {"[train]", "batch 2000000000", "needs", "GB, this machine has"});
    expect_refused(run + " --seq-len 20000000", {"[train]", "seq-len 20000000", "needs", "GB, this machine has"});
    EXPECT_FALSE(fs::exists(dir / "run"));
}

TEST(HostileReproducers, NumbersOutOfRangeAreRefusedByName) {
    test::ScratchDir dir;
    const fs::path data = write_corpus(dir.path(), 400);
    const std::string run = "train --quiet --data " + data.string() + " --out " + (dir / "run").string();
    expect_refused(run + " --seed -1", {"seed: -1 is negative"});
    expect_refused(run + " --threads -1", {"--threads", "'-1' is not a thread count: 0 (all cores) to 1024"});
    expect_refused(run + " --lr 1e300", {"lr: 1e300 is not a finite number"});
    expect_refused(run + " --d-model 99999999999", {"d-model: 99999999999 is out of range"});
    expect_refused(run + " --d-model 100000000", {"d-model 100000000", "needs", "GB, this machine has"});
    expect_refused(run + " --layers 5000 --d-model 8 --heads 1 --seq-len 8 --batch 1",
                   {"layers is 5000, above sinklab's limit of 4096"});
    expect_refused("probe --model " + (dir / "run").string() + " --threads 99999",
                   {"'99999' is not a thread count"});
}

TEST(HostileReproducers, DevicesFifosAndLinkLoopsAreNamed) {
    test::ScratchDir dir;
    const fs::path out = dir / "run";
    expect_refused("train --quiet --data /dev/zero --out " + out.string(), {"/dev/zero: is a device"});
    ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
    expect_refused("train --quiet --data " + (dir / "fifo").string() + " --out " + out.string(),
                   {"fifo: is a FIFO (named pipe)"});
    expect_refused("train --quiet /dev/zero --out " + out.string(), {"/dev/zero: is a device"});
    expect_refused("sweep /dev/zero --out " + out.string(), {"/dev/zero: is a device"});
    fs::create_symlink(dir / "loop_b", dir / "loop_a");
    fs::create_symlink(dir / "loop_a", dir / "loop_b");
    expect_refused("train --quiet --data " + (dir / "loop_a").string() + " --out " + out.string(),
                   {"loop_a: a loop of symbolic links"});
    expect_refused("train --quiet " + (dir / "loop_a").string() + " --out " + out.string(),
                   {"loop_a: a loop of symbolic links"});
    expect_refused("tokenize --tokenizer " + (dir / "loop_a").string() + " hi", {"loop_a: a loop of symbolic links"});
    expect_refused("tokenize --tokenizer " + (dir / "fifo").string() + " hi", {"fifo: is a FIFO"});
    EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace sinklab::testing
