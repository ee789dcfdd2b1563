#pragma once
// AttentionSpec: an attention design as data (DESIGN.md section 3, docs/attention-designs.md). The
// kernels read it; no design has a copy of the kernel.
#include <string>
#include <vector>

namespace sinklab {

// The row function of w_ij = f(s_ij) / Z_i (normalised) or w_ij = f(s_ij) (unnormalised), s_ij the
// scaled score plus any positional bias.
enum class AttentionKind {
    softmax,     // f = exp, Z = sum (max-subtracted)
    sigmoid,     // f = sigmoid(s + b); normalised: Z = sum + 1e-8
    elu1,        // f = elu(s) + 1; normalised: Z = sum + 1e-8
    identity,    // f = s; normalised: Z = max(|sum|, 1)
    softpick,    // relu(e^s - 1) / (sum |e^s - 1| + 1e-8)
    linear_elu,  // kernel phi(q_i).phi(k_j) * scale, phi = elu + 1 after RoPE; Z = sum + 1e-8
};

// One extra key column that every query sees: never masked, never rotated (its key is not a token).
enum class SlotKind {
    none,
    kv,     // score scale * q.k*, value v* (learnable k*, v*; Gu et al. KV bias)
    k,      // score scale * q.k*, value 0 (Gu et al. K bias)
    zero,   // score 0, value 0 (softmax1, Miller's "off by one")
    score,  // a learnable logit per head, not scaled, value 0 (gpt-oss sinks)
};

// Output gate of gated attention: out * sigmoid(x W_g), applied by the model (attention/output_gate.h).
enum class GateKind { none, elementwise, headwise };

struct AttentionSpec {
    AttentionKind kind = AttentionKind::softmax;
    bool normalised = true;  // divide by Z; only sigmoid, elu1 and identity have an unnormalised form
    SlotKind slot = SlotKind::none;
    bool shared_heads = false;  // k*, v*, the value bias and a learnable sigmoid b: one for all heads
    bool value_bias = false;    // a learnable vector added to every output row of a head (Gu's V bias)
    float sigmoid_bias = 0.0f;  // b of sigmoid when fixed (Apple: -ln(context length))
    bool sigmoid_bias_learnable = false;  // b is a parameter (AttentionParams::sigmoid_bias)
    GateKind gate = GateKind::none;
    bool sink_token = false;  // a learnable token prepended to every sequence (model level)
    float scale = 0.0f;       // score scale; 0 means 1/sqrt(head size)
    // Logit soft-capping (Gemma 2): each token score scale q.k becomes softcap * tanh(q.k scale /
    // softcap) before the positional bias joins; the slot's score is not capped. 0 = off.
    float softcap = 0.0f;

    // Names: softmax, sink_token, kv_bias, kv_bias_shared, k_bias, k_bias_shared, v_bias,
    // v_bias_shared, softmax1, score_bias, sigmoid, sigmoid_learnable, sigmoid_learnable_shared,
    // sigmoid_norm, elu1, elu1_norm, linear_elu, identity, identity_norm, softpick, gated,
    // gated_headwise; and sigmoid:<b> for a fixed score bias b (sigmoid:-7.62).
    static AttentionSpec parse(const std::string& name);
    // The name parse() reads back (scale and softcap excluded); throws for a combination no name stands for.
    std::string name() const;
    static std::vector<std::string> known_names();

    bool uses_sink_token() const { return sink_token; }
    bool has_slot() const { return slot != SlotKind::none; }
    // Checks that the kernel can compute the combination (a hand-built spec may not be one).
    void validate() const;

    bool operator==(const AttentionSpec&) const = default;
};

// Edits of the first keys for the sink interventions (docs/perturb.md, issue 20), which every
// kernel reads as part of the mask: `hidden` (mask-first:K) hides keys 0..K-1 from every query
// after them (queries 0..K-1 keep their rows, which would otherwise be empty); `factor`
// (scale-first:F, F > 0) multiplies key 0's f(s) by F before the row is normalised, in every row
// that sees key 0. For softmax rows that is ln F added to the score, exactly; unnormalised designs
// have no normaliser, so their weight on key 0 is simply F times as large. A slot column is never
// edited. Inference only for factor != 1 (its backward is not written).
struct FirstKeyEdit {
    int hidden = 0;
    float factor = 1.0f;
    bool active() const { return hidden > 0 || factor != 1.0f; }
    void validate() const;  // hidden >= 0, factor finite and > 0
    bool operator==(const FirstKeyEdit&) const = default;
};

// Which keys a query sees: mask data that every kernel reads through lo() and hi().
// causal (decoders): key j <= query i; window w: the w most recent keys including itself; prefix
// p: the first p tokens are visible to every query (prefix LM). causal = false (encoders):
// bidirectional, every query sees every key; window and prefix do not apply.
// first_keys: the edits above.
// Key padding of a right-padded batch: keys [keys, T) are padding, seen by no query (weight exactly
// 0); key_lengths holds `keys` per sequence (B), and a kernel reads sequence(b)'s mask for
// sequence b. Padded query rows still attend to the real keys, as Hugging Face computes them.
struct AttentionMask {
    int window = 0;
    int prefix = 0;
    FirstKeyEdit first_keys;
    bool causal = true;
    int keys = 0;                       // real keys of the sequence; 0: all T
    const int* key_lengths = nullptr;   // (B) `keys` of each sequence of a padded batch, or null

    AttentionMask() = default;
    AttentionMask(int window_, int prefix_, FirstKeyEdit first_keys_ = {})
        : window(window_), prefix(prefix_), first_keys(first_keys_) {}
    // The mask of sequence b of the batch (the same mask when no key lengths are given).
    AttentionMask sequence(int b) const {
        AttentionMask m = *this;
        if (key_lengths) {
            m.keys = key_lengths[b];
            m.key_lengths = nullptr;
        }
        return m;
    }
    // Visible key range [lo, hi] (inclusive) of query i in a sequence of T keys (a prefix longer
    // than the sequence makes every key visible, never one past the end).
    int lo(int i) const {
        const int from_window = causal && window > 0 && i - window + 1 > 0 ? i - window + 1 : 0;
        const int hidden = first_keys.hidden;
        return i >= hidden && from_window < hidden ? hidden : from_window;
    }
    // The factor on key 0 in row i (1 when the row does not see key 0 or nothing is scaled).
    float first_key_factor(int i) const { return lo(i) == 0 ? first_keys.factor : 1.0f; }
    int hi(int i, int T) const {
        const int end = keys > 0 && keys < T ? keys : T;  // one past the last real key
        const int last = !causal ? end - 1 : prefix > 0 && prefix - 1 > i ? prefix - 1 : i;
        return last < end - 1 ? last : end - 1;
    }
};

}  // namespace sinklab
