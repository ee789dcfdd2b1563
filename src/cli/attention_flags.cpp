#include "cli/attention_flags.h"

#include <fmt/format.h>

#include "attention/attention_kernel.h"

namespace sinklab::cli {

void add_attention_kernel_option(CLI::App* cmd, std::string& kernel) {
    cmd->add_option("--attention-kernel,--attention-path", kernel,
                    fmt::format("auto|materialised|blockwise: the attention kernel (every design runs on both). auto "
                                "takes the blockwise kernel from T = {} positions on, where it was measured as fast "
                                "as the materialised one or faster (5x faster forward and backward at T = 4096) and "
                                "its memory grows linearly in T; the materialised one below, whose (T, T) weights "
                                "are small there (docs/performance.md, \"Blockwise attention\")",
                                kBlockwiseFromT))
        ->capture_default_str();
}

}  // namespace sinklab::cli
