#pragma once
// Helpers shared by the io tests: per-test scratch folders, raw file writing, fixture paths, and
// checking that a loader rejects a file with a specific, file-naming message.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "../support/scratch_dir.h"
#include "core/error.h"

namespace sinklab::test {

namespace fs = std::filesystem;

inline fs::path fixtures_dir() { return fs::path(SINKLAB_SOURCE_DIR) / "tests" / "fixtures"; }

inline void write_bytes(const fs::path& path, std::string_view bytes) {
    // Replace rather than truncate: ext4 flushes a truncated-and-rewritten file to disk on close
    // (auto_da_alloc), which made the corruption tests take seconds.
    fs::remove(path);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
}

inline std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::string le_u64(uint64_t value) {
    std::string bytes(8, '\0');
    std::memcpy(bytes.data(), &value, 8);  // the test machines are little-endian, like the format
    return bytes;
}

// A safetensors file from a literal header and `data_bytes` zero bytes of data section.
inline std::string safetensors_bytes(std::string_view header, size_t data_bytes) {
    return le_u64(header.size()) + std::string(header) + std::string(data_bytes, '\0');
}

// Runs `open`, which must throw sinklab::Error whose message names `path` and contains `phrase`.
template <typename Open>
void expect_rejected(const fs::path& path, const std::string& phrase, Open&& open) {
    try {
        open();
        ADD_FAILURE() << path << " was accepted; expected an error containing \"" << phrase << "\"";
    } catch (const sinklab::Error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find(path.filename().string()), std::string::npos)
            << "message does not name the file: " << message;
        EXPECT_NE(message.find(phrase), std::string::npos) << "expected \"" << phrase << "\" in: " << message;
    }
}

}  // namespace sinklab::test
