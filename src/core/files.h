#pragma once
// File helpers shared by every module: whole-file reads with clear errors, and atomic writes
// (write to a temporary sibling, fsync, rename) so that a crash never leaves a partial file.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace sinklab {

// What an input path may be: a regular file or a folder. Anything else is refused with the path
// named and the reason: missing, a symbolic-link loop, unreadable, or a device, FIFO or socket
// (reading /dev/zero never ends, and opening a FIFO waits for a writer).
enum class PathKind { file, folder };
PathKind input_path_kind(const std::filesystem::path& path, const std::string& module);
// input_kind, and a folder is refused too.
void require_input_file(const std::filesystem::path& path, const std::string& module);

// The whole of a regular file (require_input_file first).
std::string read_text_file(const std::filesystem::path& path, const std::string& module);
// Writes `contents` to `path` atomically.
void write_file_atomic(const std::filesystem::path& path, std::string_view contents);
// Renames a finished temporary directory onto `path`, replacing an older one atomically enough that
// either the old or the new folder is complete at every moment (the old one is moved aside first).
void replace_directory(const std::filesystem::path& finished_tmp, const std::filesystem::path& path);
void fsync_path(const std::filesystem::path& path);

}  // namespace sinklab
