#pragma once

namespace sinklab {

// How a backward op stores an input's gradient: added to what the buffer holds (the default, so
// that the consumers of one tensor sum into one buffer), or written over it, which spares the
// caller zeroing a buffer that this op alone fills.
enum class GradWrite { accumulate, overwrite };

}  // namespace sinklab
