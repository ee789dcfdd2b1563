#include "metrics/taps.h"

namespace sinklab {

std::string_view tap_name(Tap tap) {
    switch (tap) {
        case Tap::embed: return "embed";
        case Tap::qkv: return "qkv";
        case Tap::attn_slot_weights: return "attn_slot_weights";
        case Tap::attn_weights: return "attn_weights";
        case Tap::attn_column_sums: return "attn_column_sums";
        case Tap::attn_row_entropy: return "attn_row_entropy";
        case Tap::attn_out: return "attn_out";
        case Tap::router_logits: return "router_logits";
        case Tap::router_weights: return "router_weights";
        case Tap::block_out: return "block_out";
        case Tap::final_norm: return "final_norm";
        case Tap::logits: return "logits";
    }
    return "unknown";
}

}  // namespace sinklab
