#pragma once
// The memory a command is about to ask for, checked against the machine before it allocates, so
// that a setting too large for the machine gets one line naming what it needs instead of a
// std::bad_alloc, an out-of-memory kill or minutes of swapping.
#include <cstdint>
#include <string>

namespace sinklab {

// Physical memory, or the cgroup's memory limit (cgroup v2 memory.max) when that is lower.
uint64_t machine_memory_bytes();

// Throws "<what> needs X GB, this machine has Y GB; <advice>" when `bytes` exceeds
// machine_memory_bytes(). `bytes` is a double so that an estimate from absurd sizes (a sequence
// length of 10^9) cannot overflow on its way here.
void require_memory(double bytes, const std::string& module, const std::string& what, const std::string& advice);

// "9.8 GB": decimal gigabytes with one decimal (0.1 at the least; "1.0e+09 GB" past a million).
std::string format_gigabytes(double bytes);

}  // namespace sinklab
