#pragma once
// What the fuzz targets share. Each target (fuzz_<name>.cpp) defines LLVMFuzzerTestOneInput: the
// input becomes one or more files (sinklab's parsers read paths), the parser runs, and only a
// sinklab::Error may come out. Anything else (a crash, a sanitizer report, another exception such
// as a JSON type error or std::bad_alloc, a leak, an allocation beyond libFuzzer's -rss_limit_mb
// or -malloc_limit_mb) is a finding. The same source also builds into a plain program that replays
// saved inputs (regression_main.cpp), so that the normal build's ctest runs them.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace sinklab::fuzz {

// Inputs that stand for several files hold them one after another, separated by this line
// (tests/fuzz/sinklab.dict gives it to libFuzzer, so mutations add and remove files).
inline constexpr std::string_view kFileSeparator = "\n--sinklab-fuzz-next-file--\n";

// The first `count` files of `data` (the last takes the rest; missing ones are absent).
inline std::vector<std::string_view> split_files(const uint8_t* data, size_t size, size_t count) {
    std::string_view rest(reinterpret_cast<const char*>(data), size);
    std::vector<std::string_view> files;
    while (files.size() + 1 < count) {
        const size_t at = rest.find(kFileSeparator);
        if (at == std::string_view::npos) break;
        files.push_back(rest.substr(0, at));
        rest.remove_prefix(at + kFileSeparator.size());
    }
    files.push_back(rest);
    return files;
}

// A folder of this process for the input's files, emptied for every input (on /dev/shm when the
// machine has it: no disk writes at thousands of inputs a second).
inline std::filesystem::path scratch_folder() {
    static const std::filesystem::path folder = [] {
        const std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
        return base / ("sinklab-fuzz-" + std::to_string(::getpid()));
    }();
    std::error_code ec;
    std::filesystem::remove_all(folder, ec);
    std::filesystem::create_directories(folder);
    return folder;
}

inline std::filesystem::path write_file(const std::filesystem::path& folder, const std::string& name,
                                        std::string_view bytes) {
    const std::filesystem::path path = folder / name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
}

// The files of an input under these names, in a fresh scratch_folder(): the first file of the input
// gets the first name, and so on; names beyond the input's files are not written.
inline std::filesystem::path write_input_files(const uint8_t* data, size_t size,
                                               const std::vector<std::string>& names) {
    const std::filesystem::path folder = scratch_folder();
    const std::vector<std::string_view> files = split_files(data, size, names.size());
    for (size_t i = 0; i < files.size(); ++i) write_file(folder, names[i], files[i]);
    return folder;
}

// Runs `parse`; a sinklab::Error (a clear refusal) is the one acceptable failure.
template <typename Parse>
void expect_clear_refusal_or_success(Parse&& parse) {
    try {
        parse();
    } catch (const sinklab::Error&) {
    }
}

}  // namespace sinklab::fuzz
