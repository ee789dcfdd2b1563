#pragma once
// Tensor: a float32 buffer with a shape. Aligned to 64 bytes for AVX-512 loads.
// Kernels take raw pointers plus dimensions (llm.c style); Tensor only owns memory.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace sinklab {

using Shape = std::vector<int64_t>;

std::string shape_string(const Shape& shape);
int64_t shape_numel(const Shape& shape);

struct AlignedDeleter {
    void operator()(float* p) const;
};

class Tensor {
public:
    Tensor() = default;
    explicit Tensor(Shape shape);  // zero-filled
    Tensor(std::initializer_list<int64_t> shape) : Tensor(Shape(shape)) {}
    Tensor(const Tensor& other);
    Tensor& operator=(const Tensor& other);
    Tensor(Tensor&&) noexcept = default;
    Tensor& operator=(Tensor&&) noexcept = default;

    float* data() { return data_.get(); }
    const float* data() const { return data_.get(); }
    float& operator[](int64_t i) { return data_.get()[i]; }
    float operator[](int64_t i) const { return data_.get()[i]; }
    const Shape& shape() const { return shape_; }
    int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
    int ndim() const { return static_cast<int>(shape_.size()); }
    int64_t numel() const { return numel_; }
    bool empty() const { return numel_ == 0; }
    void zero();
    // Reinterprets the same buffer with a new shape of equal size.
    void reshape(Shape shape);

private:
    std::unique_ptr<float[], AlignedDeleter> data_;
    Shape shape_;
    int64_t numel_ = 0;
};

}  // namespace sinklab
