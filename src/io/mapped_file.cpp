#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "core/error.h"

namespace sinklab {

MappedFile::MappedFile(const std::filesystem::path& path, const std::string& module) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) fail(module, "{}: no such file", path.string());
        fail(module, "{}: cannot open: {}", path.string(), std::strerror(errno));
    }
    struct stat status {};
    if (::fstat(fd, &status) != 0) {
        int error = errno;
        ::close(fd);
        fail(module, "{}: cannot stat: {}", path.string(), std::strerror(error));
    }
    if (!S_ISREG(status.st_mode)) {
        ::close(fd);
        if (S_ISDIR(status.st_mode)) fail(module, "{}: is a directory, expected a file", path.string());
        fail(module, "{}: not a regular file", path.string());
    }
    size_ = static_cast<size_t>(status.st_size);
    if (size_ > 0) {
        void* mapping = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (mapping == MAP_FAILED) {
            int error = errno;
            ::close(fd);
            fail(module, "{}: cannot map {} bytes into memory: {}", path.string(), size_, std::strerror(error));
        }
        data_ = static_cast<const std::byte*>(mapping);
    }
    // The mapping keeps the file's pages reachable; the descriptor is no longer needed.
    ::close(fd);
}

MappedFile::~MappedFile() { unmap(); }

void MappedFile::release(size_t offset, size_t size) const {
    if (!data_ || size == 0 || offset >= size_) return;
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t begin = (offset + page - 1) / page * page;
    const size_t end = std::min(offset + size, size_) / page * page;
    // advice only: a failure leaves the pages resident, which costs memory, not correctness
    if (end > begin) ::madvise(const_cast<std::byte*>(data_) + begin, end - begin, MADV_DONTNEED);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        unmap();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

void MappedFile::unmap() {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
}

}  // namespace sinklab
