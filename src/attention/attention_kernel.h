#pragma once
// Which attention kernel a forward runs. Every design runs on both; they differ in what they keep:
// materialised (attention.h) writes the (B, NH, T, T) weights, which maps and the reference need;
// blockwise (blockwise_attention.h) keeps a few numbers per query row, so its memory is linear in
// T. automatic picks by T, from the measurements in docs/performance.md ("Blockwise attention").
#include <string>

namespace sinklab {

enum class AttentionKernel { automatic, materialised, blockwise };

// "auto", "materialised" or "blockwise"; anything else is one error naming `flag` and the three.
AttentionKernel parse_attention_kernel(const std::string& name, const std::string& flag = "--attention-kernel");
std::string attention_kernel_name(AttentionKernel kernel);

// The sequence length (the positions a block sees) from which automatic takes the blockwise kernel.
inline constexpr int kBlockwiseFromT = 64;

// The kernel a forward over T positions runs: `choice`, or for automatic the blockwise kernel from
// kBlockwiseFromT on and the materialised one below.
AttentionKernel resolve_attention_kernel(AttentionKernel choice, int T);

}  // namespace sinklab
