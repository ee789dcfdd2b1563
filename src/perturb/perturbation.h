#pragma once
// What the over-mixing test perturbs (docs/perturb.md): token windows, and in each some tokens
// replaced by others. A window is the clean input x; each of its perturbations gives one x'.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sinklab {

// Tokens first .. first + replacement.size() - 1 of one window replaced.
struct Perturbation {
    int window = 0;
    int first = 0;  // 0-indexed position of the first replaced token
    std::vector<int32_t> replacement;
    int last() const { return first + static_cast<int>(replacement.size()) - 1; }
};

struct PerturbationSet {
    int T = 0;
    std::vector<int32_t> windows;  // (W, T) the clean inputs
    std::vector<Perturbation> perturbations;
    std::string description;  // one line, e.g. "200 random single-token substitutions in 50 windows of 64 tokens"
    // The loss each condition scores the clean windows with, when there is one: an encoder's
    // masked-LM loss reads loss_tokens (the windows with some text tokens replaced by the mask
    // token) against loss_targets (the original ids there, -1 elsewhere), both (W, T).
    std::string loss;  // "masked_lm", or empty: no loss
    std::vector<int32_t> loss_tokens, loss_targets;
    std::string loss_description;  // one line: what was masked, the rate and the seed

    int window_count() const { return T > 0 ? static_cast<int>(windows.size() / T) : 0; }
    // The perturbed window of perturbation k (T tokens).
    std::vector<int32_t> perturbed(size_t k) const;
    void validate(int vocab_size) const;  // positions inside the windows, ids inside the vocabulary
};

// N random single-token substitutions over the W = ceil(N / per_window) windows of `windows` (W
// or more windows of T tokens; the first W are used): window k / per_window gets perturbation k at
// a position drawn without replacement from [first_position, last_position] (0-indexed; -1: T - 2,
// as a causal model's last token has no later token to measure, and an encoder's [SEP] is spared),
// its token replaced by one drawn uniformly from the vocabulary without the original and the
// `excluded` ids (BOS; an encoder's special tokens). Seeded: the same arguments give the same set.
PerturbationSet random_perturbations(const std::vector<int32_t>& windows, int T, int N, int per_window,
                                     int first_position, int vocab_size, const std::vector<int32_t>& excluded,
                                     uint64_t seed, int last_position = -1);

// One prompt and its perturbed version, of the same length: the perturbation spans the first to
// the last differing token. Identical prompts (nothing differs) give the no-op perturbation of
// position `identical_at` by its own token.
PerturbationSet prompt_perturbation(const std::vector<int32_t>& clean, const std::vector<int32_t>& perturbed,
                                    int identical_at, const std::string& description);

// The same perturbations with every window's first token left out (drop-bos; an encoder's [CLS]):
// windows of T - 1 tokens, positions one less, the loss input without its first column. Throws when
// a window does not start with `bos` or a perturbation replaces it.
PerturbationSet drop_first_token(const PerturbationSet& set, int32_t bos);

}  // namespace sinklab
