#include "core/tensor.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace sinklab {

std::string shape_string(const Shape& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

int64_t shape_numel(const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) {
        SINKLAB_CHECK(d >= 0, "tensor", "negative dimension in shape {}", shape_string(shape));
        SINKLAB_CHECK(!__builtin_mul_overflow(n, d, &n), "tensor", "shape {} has more than 2^63 elements",
                      shape_string(shape));
    }
    return n;
}

void AlignedDeleter::operator()(float* p) const { std::free(p); }

// Tensors of 2 MiB and more start on a 2 MiB boundary and ask the kernel for transparent huge
// pages. The THP setting `madvise` (this project's machines have it) gives them only to memory
// that asks. The request is a hint: with THP `never`, or no free huge page, a tensor stays on 4 KiB
// pages. A training step walks hundreds of MB of activations, weights and gradients, many by
// strided rows: on 4 KiB pages, TLB misses. Training steps measured 1.5-3% faster on tiny and small
// (docs/performance.md).
static float* allocate(int64_t n) {
    if (n == 0) return nullptr;
    if (static_cast<uint64_t>(n) > (SIZE_MAX - 64) / sizeof(float))
        fail("tensor", "out of memory: {} floats is more than any machine holds", n);
    constexpr size_t kHugePage = size_t{2} << 20;
    const size_t bytes = ((static_cast<size_t>(n) * sizeof(float) + 63) / 64) * 64;
    const bool huge = bytes >= kHugePage;
    void* p = nullptr;
    if (posix_memalign(&p, huge ? kHugePage : 64, bytes) != 0)
        fail("tensor", "out of memory allocating {} floats ({:.1f} MiB)", n, bytes / 1048576.0);
    if (huge) madvise(p, bytes, MADV_HUGEPAGE);  // only whole 2 MiB pages of the range can be huge
    return static_cast<float*>(p);
}

Tensor::Tensor(Shape shape) : shape_(std::move(shape)), numel_(shape_numel(shape_)) {
    data_.reset(allocate(numel_));
    zero();
}

Tensor::Tensor(const Tensor& other) : shape_(other.shape_), numel_(other.numel_) {
    data_.reset(allocate(numel_));
    if (numel_) std::memcpy(data_.get(), other.data_.get(), numel_ * sizeof(float));
}

Tensor& Tensor::operator=(const Tensor& other) {
    if (this != &other) {
        Tensor copy(other);
        *this = std::move(copy);
    }
    return *this;
}

void Tensor::zero() {
    if (numel_) std::memset(data_.get(), 0, numel_ * sizeof(float));
}

void Tensor::reshape(Shape shape) {
    SINKLAB_CHECK(shape_numel(shape) == numel_, "tensor", "cannot reshape {} to {}", shape_string(shape_),
                  shape_string(shape));
    shape_ = std::move(shape);
}

}  // namespace sinklab
