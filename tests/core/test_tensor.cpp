// Tensor storage: zeroed, aligned for vector loads, and large buffers on 2 MiB boundaries so that
// the kernel can back them with huge pages (core/tensor.cpp says why).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>

#include "core/tensor.h"

using namespace sinklab;

namespace {
std::uintptr_t address(const Tensor& t) { return reinterpret_cast<std::uintptr_t>(t.data()); }
}  // namespace

TEST(Tensor, SmallBuffersAreCacheLineAlignedAndZeroed) {
    Tensor t({3, 5});
    EXPECT_EQ(address(t) % 64, 0u);
    EXPECT_TRUE(std::all_of(t.data(), t.data() + t.numel(), [](float x) { return x == 0.0f; }));
}

TEST(Tensor, LargeBuffersStartOnA2MiBBoundaryAndCopyWhole) {
    Tensor t({3, 1 << 18});  // 3 MiB: one whole huge page and a tail
    EXPECT_EQ(address(t) % (2u << 20), 0u);
    EXPECT_TRUE(std::all_of(t.data(), t.data() + t.numel(), [](float x) { return x == 0.0f; }));
    for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(i % 1000);
    const Tensor copy(t);
    EXPECT_EQ(address(copy) % (2u << 20), 0u);
    EXPECT_TRUE(std::equal(t.data(), t.data() + t.numel(), copy.data()));
}
