#pragma once
// A whole file mapped read-only into memory. Loaders read tensors straight out of the mapping, so
// opening a multi-gigabyte checkpoint costs no copy until a tensor is actually read.
#include <cstddef>
#include <filesystem>
#include <string>

namespace sinklab {

class MappedFile {
public:
    // Errors are tagged with `module` and name the file: missing, a directory, unreadable.
    MappedFile(const std::filesystem::path& path, const std::string& module);
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    // nullptr for an empty file (an empty mapping is not allowed by mmap).
    const std::byte* data() const { return data_; }
    size_t size() const { return size_; }
    // Drops this process's copies of the pages wholly inside [offset, offset + size) (a tensor read
    // once): they leave its resident memory, and a later read loads them from the file again.
    void release(size_t offset, size_t size) const;

private:
    void unmap();

    const std::byte* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace sinklab
