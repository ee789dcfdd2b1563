#pragma once
// AttentionSpec: an attention design as data (DESIGN.md section 3). The kernels read it; no design
// has a copy of the kernel.
#include <string>
#include <vector>

namespace sinklab {

enum class AttentionKind {
    softmax,
};

struct AttentionSpec {
    AttentionKind kind = AttentionKind::softmax;
    float scale = 0.0f;  // score scale; 0 means 1/sqrt(head size)

    static AttentionSpec parse(const std::string& name);
    std::string name() const;
    static std::vector<std::string> known_names();
};

// Which keys a query sees. Causal always; window w: the w most recent keys including itself;
// prefix p: the first p tokens are visible to every query (prefix LM).
struct AttentionMask {
    int window = 0;
    int prefix = 0;
    // Visible key range [lo, hi] (inclusive) of query i in a sequence of T keys (a prefix longer
    // than the sequence makes every key visible, never one past the end).
    int lo(int i) const { return window > 0 && i - window + 1 > 0 ? i - window + 1 : 0; }
    int hi(int i, int T) const {
        const int last = prefix > 0 && prefix - 1 > i ? prefix - 1 : i;
        return last < T - 1 ? last : T - 1;
    }
};

}  // namespace sinklab
