#pragma once
// Broken copies of fixture folders, for the tests of what load_model refuses: byte-level file
// access, a safetensors file split into its header (JSON) and data section, and the check that a
// folder is rejected with an error naming the file and saying what is wrong.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../support/scratch_dir.h"
#include "core/error.h"
#include "hf_test_support.h"
#include "model/hf_loader.h"

namespace sinklab::test {

inline std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const fs::path& path, const std::string& bytes) {
    fs::remove(path);
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A copy of tests/fixtures/<fixture_name> (config.json + model.safetensors) in a scratch folder.
inline fs::path copy_fixture_folder(const ScratchDir& scratch, const std::string& fixture_name, const std::string& name) {
    const fs::path dir = scratch / name;
    fs::create_directories(dir);
    for (const char* file : {"config.json", "model.safetensors"}) fs::copy_file(fixture(fixture_name) / file, dir / file);
    return dir;
}

inline nlohmann::json read_json(const fs::path& path) { return nlohmann::json::parse(read_bytes(path)); }
inline void write_json(const fs::path& path, const nlohmann::json& j) { write_bytes(path, j.dump(2)); }

// load_model must throw an Error mentioning `file_name` and every phrase.
inline void expect_rejected(const fs::path& dir, const std::string& file_name, const std::vector<std::string>& phrases) {
    try {
        load_model(dir);
        ADD_FAILURE() << dir << " was accepted";
    } catch (const Error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find(file_name), std::string::npos) << "does not name " << file_name << ": " << message;
        for (const auto& phrase : phrases)
            EXPECT_NE(message.find(phrase), std::string::npos) << "expected \"" << phrase << "\" in: " << message;
    }
}

// The safetensors file split into its header (as JSON) and its data section.
struct RawSafetensors {
    nlohmann::json header;
    std::string data;

    static RawSafetensors read(const fs::path& path) {
        const std::string bytes = read_bytes(path);
        uint64_t n = 0;
        std::memcpy(&n, bytes.data(), 8);
        return {nlohmann::json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
    }
    void write(const fs::path& path) const {
        const std::string text = header.dump();
        const uint64_t n = text.size();
        std::string bytes(8, '\0');
        std::memcpy(bytes.data(), &n, 8);
        write_bytes(path, bytes + text + data);
    }
};

}  // namespace sinklab::test
