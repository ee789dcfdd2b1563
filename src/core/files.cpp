#include "core/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace sinklab {

namespace fs = std::filesystem;

PathKind input_path_kind(const fs::path& path, const std::string& module) {
    struct stat status {};
    if (::stat(path.c_str(), &status) != 0) {
        const int error = errno;
        if (error == ENOENT || error == ENOTDIR) fail(module, "{}: no such file or folder", path.string());
        if (error == ELOOP) fail(module, "{}: a loop of symbolic links", path.string());
        fail(module, "{}: cannot read: {}", path.string(), std::strerror(error));
    }
    if (S_ISREG(status.st_mode)) return PathKind::file;
    if (S_ISDIR(status.st_mode)) return PathKind::folder;
    const char* what = S_ISCHR(status.st_mode) || S_ISBLK(status.st_mode) ? "a device"
                       : S_ISFIFO(status.st_mode)                         ? "a FIFO (named pipe)"
                       : S_ISSOCK(status.st_mode)                         ? "a socket"
                                                                          : "not a regular file";
    fail(module, "{}: is {}, expected a regular file or a folder", path.string(), what);
}

void require_input_file(const fs::path& path, const std::string& module) {
    if (input_path_kind(path, module) == PathKind::folder)
        fail(module, "{}: is a directory, expected a file", path.string());
}

std::string read_text_file(const fs::path& path, const std::string& module) {
    require_input_file(path, module);
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(module, "{}: cannot open: {}", path.string(), std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void fsync_path(const fs::path& path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

void write_file_atomic(const fs::path& path, std::string_view contents) {
    fs::path tmp = path;
    tmp += ".tmp." + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) fail("io", "{}: cannot write: {}", tmp.string(), std::strerror(errno));
        out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
        out.flush();
        if (!out) {
            std::error_code ec;
            fs::remove(tmp, ec);
            fail("io", "{}: write failed (disk full?)", path.string());
        }
    }
    fsync_path(tmp);
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
        fs::remove(tmp, ec);
        fail("io", "{}: cannot rename into place: {}", path.string(), ec.message());
    }
    if (path.has_parent_path()) fsync_path(path.parent_path());
}

void replace_directory(const fs::path& finished_tmp, const fs::path& path) {
    std::error_code ec;
    fs::path old = path;
    old += ".old";
    fs::remove_all(old, ec);
    if (fs::exists(path)) {
        fs::rename(path, old, ec);
        if (ec) fail("io", "{}: cannot move the previous folder aside: {}", path.string(), ec.message());
    }
    fs::rename(finished_tmp, path, ec);
    if (ec) fail("io", "{}: cannot rename {} into place: {}", path.string(), finished_tmp.string(), ec.message());
    fs::remove_all(old, ec);
    if (path.has_parent_path()) fsync_path(path.parent_path());
}

}  // namespace sinklab
