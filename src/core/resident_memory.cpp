#include "core/resident_memory.h"

#include <unistd.h>

#include <cstdio>

namespace sinklab {

size_t resident_bytes() {
    // statm: total program size, then resident pages
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, resident = 0;
    const int read = std::fscanf(f, "%lu %lu", &size, &resident);
    std::fclose(f);
    const long page = ::sysconf(_SC_PAGE_SIZE);
    return read == 2 && page > 0 ? static_cast<size_t>(resident) * static_cast<size_t>(page) : 0;
}

}  // namespace sinklab
