#include "core/memory.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "core/error.h"

namespace sinklab {

uint64_t machine_memory_bytes() {
    static const uint64_t bytes = [] {  // read once: sweeps check a thousand runs against it
    const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGESIZE);
    uint64_t bytes = pages > 0 && page_size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size)
                                                : UINT64_MAX;
    // A container's limit ("max" when there is none).
    std::ifstream limit_file("/sys/fs/cgroup/memory.max");
    uint64_t limit = 0;
    if (limit_file >> limit && limit > 0) bytes = std::min(bytes, limit);
    return bytes;
    }();
    return bytes;
}

std::string format_gigabytes(double bytes) {
    const double gb = bytes / 1e9;
    if (gb >= 1e6) return fmt::format("{:.1e} GB", gb);
    return fmt::format("{:.1f} GB", std::max(gb, 0.1));
}

void require_memory(double bytes, const std::string& module, const std::string& what, const std::string& advice) {
    const double available = static_cast<double>(machine_memory_bytes());
    if (!(bytes <= available))  // a NaN estimate is refused too
        fail(module, "{} needs {}, this machine has {}; {}", what, format_gigabytes(bytes), format_gigabytes(available),
             advice);
}

}  // namespace sinklab
