#pragma once
// Paths and scratch files shared by the tokenizer tests.
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "core/error.h"

namespace sinklab::testing {

inline std::filesystem::path fixture(std::string_view relative) {
    return std::filesystem::path(SINKLAB_SOURCE_DIR) / "tests/fixtures" / relative;
}

// A fresh, empty folder under the build tree for one test.
inline std::filesystem::path scratch_folder(std::string_view name) {
    const auto folder = std::filesystem::path(SINKLAB_BINARY_DIR) / "tokenizer_scratch" / name;
    std::filesystem::remove_all(folder);
    std::filesystem::create_directories(folder);
    return folder;
}

inline void write_file(const std::filesystem::path& path, std::string_view contents) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
}

inline std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The message of the sinklab::Error that `action` throws; a test failure when it throws none.
template <typename Action>
std::string error_message(Action&& action) {
    try {
        action();
    } catch (const sinklab::Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected a sinklab::Error";
    return "";
}

// Whether `message` contains every one of `parts` (for EXPECT_TRUE with the message printed).
inline ::testing::AssertionResult mentions(const std::string& message, std::initializer_list<std::string_view> parts) {
    for (std::string_view part : parts) {
        if (message.find(part) == std::string::npos) {
            return ::testing::AssertionFailure() << "\"" << message << "\" does not mention \"" << part << "\"";
        }
    }
    return ::testing::AssertionSuccess();
}

}  // namespace sinklab::testing
