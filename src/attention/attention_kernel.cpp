#include "attention/attention_kernel.h"

#include "core/error.h"

namespace sinklab {

AttentionKernel parse_attention_kernel(const std::string& name, const std::string& flag) {
    if (name == "auto") return AttentionKernel::automatic;
    if (name == "materialised") return AttentionKernel::materialised;
    if (name == "blockwise") return AttentionKernel::blockwise;
    fail("attention", "{} '{}': expected auto, materialised or blockwise", flag, name);
}

std::string attention_kernel_name(AttentionKernel kernel) {
    switch (kernel) {
        case AttentionKernel::automatic: return "auto";
        case AttentionKernel::materialised: return "materialised";
        case AttentionKernel::blockwise: return "blockwise";
    }
    return "auto";
}

AttentionKernel resolve_attention_kernel(AttentionKernel choice, int T) {
    if (choice != AttentionKernel::automatic) return choice;
    return T >= kBlockwiseFromT ? AttentionKernel::blockwise : AttentionKernel::materialised;
}

}  // namespace sinklab
