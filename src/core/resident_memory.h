#pragma once
// The process's resident memory (RSS), as the kernel counts it: what a long run watches to show
// that its memory stays flat.
#include <cstddef>

namespace sinklab {

// Bytes resident now (/proc/self/statm); 0 where the file cannot be read.
size_t resident_bytes();

}  // namespace sinklab
