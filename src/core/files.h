#pragma once
// File helpers shared by every module: whole-file reads with clear errors, and atomic writes
// (write to a temporary sibling, fsync, rename) so that a crash never leaves a partial file.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace sinklab {

std::string read_text_file(const std::filesystem::path& path, const std::string& module);
// Writes `contents` to `path` atomically.
void write_file_atomic(const std::filesystem::path& path, std::string_view contents);
// Renames a finished temporary directory onto `path`, replacing an older one atomically enough that
// either the old or the new folder is complete at every moment (the old one is moved aside first).
void replace_directory(const std::filesystem::path& finished_tmp, const std::filesystem::path& path);
void fsync_path(const std::filesystem::path& path);

}  // namespace sinklab
