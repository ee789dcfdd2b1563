#include "perturb/perturbation.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"
#include "core/rng.h"

namespace sinklab {

std::vector<int32_t> PerturbationSet::perturbed(size_t k) const {
    const Perturbation& p = perturbations.at(k);
    std::vector<int32_t> tokens(windows.begin() + static_cast<long>(p.window) * T,
                                windows.begin() + static_cast<long>(p.window + 1) * T);
    std::copy(p.replacement.begin(), p.replacement.end(), tokens.begin() + p.first);
    return tokens;
}

void PerturbationSet::validate(int vocab_size) const {
    SINKLAB_CHECK(T >= 1 && !windows.empty() && windows.size() % T == 0, "perturb",
                  "the perturbation set needs windows of T >= 1 tokens");
    for (int32_t id : windows)
        SINKLAB_CHECK(id >= 0 && id < vocab_size, "perturb", "token id {} is outside the vocabulary (0..{})", id,
                      vocab_size - 1);
    SINKLAB_CHECK(loss.empty() || (loss_tokens.size() == windows.size() && loss_targets.size() == windows.size()),
                  "perturb", "the {} loss input needs as many tokens and targets as the windows", loss);
    for (int32_t id : loss_tokens)
        SINKLAB_CHECK(id >= 0 && id < vocab_size, "perturb", "token id {} is outside the vocabulary (0..{})", id,
                      vocab_size - 1);
    for (const Perturbation& p : perturbations) {
        SINKLAB_CHECK(p.window >= 0 && p.window < window_count(), "perturb", "perturbation of window {} of {}",
                      p.window, window_count());
        SINKLAB_CHECK(!p.replacement.empty() && p.first >= 0 && p.last() < T, "perturb",
                      "position {} is outside the {} tokens of the window", p.first + 1, T);
        for (int32_t id : p.replacement)
            SINKLAB_CHECK(id >= 0 && id < vocab_size, "perturb", "token id {} is outside the vocabulary (0..{})", id,
                          vocab_size - 1);
    }
}

PerturbationSet random_perturbations(const std::vector<int32_t>& windows, int T, int N, int per_window,
                                     int first_position, int vocab_size, const std::vector<int32_t>& excluded,
                                     uint64_t seed, int last_position) {
    SINKLAB_CHECK(N >= 1, "perturb", "--random {}: ask for at least one perturbation", N);
    SINKLAB_CHECK(per_window >= 1, "perturb", "--per-window {}: at least one perturbation per window", per_window);
    const int W = (N + per_window - 1) / per_window;
    if (last_position < 0) last_position = T - 2;
    SINKLAB_CHECK(last_position < T, "perturb", "position {} is outside windows of {} tokens", last_position + 1, T);
    const int positions = last_position + 1 - first_position;  // [first_position, last_position]
    SINKLAB_CHECK(positions >= std::min(N, per_window), "perturb",
                  "windows of {} tokens have {} positions to perturb (positions {} to {}), fewer than --per-window {}; "
                  "use a longer --seq-len or a smaller --per-window",
                  T, std::max(positions, 0), first_position + 1, last_position + 1, std::min(N, per_window));
    SINKLAB_CHECK(windows.size() >= static_cast<size_t>(W) * T, "perturb", "{} perturbations need {} windows",
                  N, W);
    std::vector<int32_t> replaceable;  // the vocabulary without the excluded ids
    for (int32_t id = 0; id < vocab_size; ++id)
        if (std::find(excluded.begin(), excluded.end(), id) == excluded.end()) replaceable.push_back(id);
    SINKLAB_CHECK(replaceable.size() >= 2, "perturb", "the vocabulary has no other token to substitute");

    PerturbationSet set;
    set.T = T;
    set.windows.assign(windows.begin(), windows.begin() + static_cast<long>(W) * T);
    Rng rng(seed);
    std::vector<int> order(positions);
    for (int k = 0; k < N; ++k) {
        const int w = k / per_window;
        if (k % per_window == 0) {  // a fresh permutation of the window's positions (Fisher-Yates)
            for (int i = 0; i < positions; ++i) order[i] = first_position + i;
            for (int i = positions - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
        }
        const int position = order[k % per_window];
        const int32_t original = set.windows[static_cast<size_t>(w) * T + position];
        int32_t token = original;
        while (token == original) token = replaceable[rng.below(replaceable.size())];
        set.perturbations.push_back({w, position, {token}});
    }
    set.description = fmt::format("{} random single-token substitutions in {} window{} of {} tokens (seed {})", N, W,
                                  W == 1 ? "" : "s", T, seed);
    return set;
}

PerturbationSet prompt_perturbation(const std::vector<int32_t>& clean, const std::vector<int32_t>& perturbed,
                                    int identical_at, const std::string& description) {
    SINKLAB_CHECK(!clean.empty() && clean.size() == perturbed.size(), "perturb",
                  "the prompt and its perturbed version must have the same number of tokens ({} and {})", clean.size(),
                  perturbed.size());
    const int T = static_cast<int>(clean.size());
    int first = -1, last = -1;
    for (int t = 0; t < T; ++t)
        if (clean[t] != perturbed[t]) {
            if (first < 0) first = t;
            last = t;
        }
    if (first < 0) {
        SINKLAB_CHECK(identical_at >= 0 && identical_at < T, "perturb", "position {} is outside the prompt's {} tokens",
                      identical_at + 1, T);
        first = last = identical_at;
    }
    PerturbationSet set;
    set.T = T;
    set.windows = clean;
    set.perturbations.push_back({0, first, std::vector<int32_t>(perturbed.begin() + first, perturbed.begin() + last + 1)});
    set.description = description;
    return set;
}

PerturbationSet drop_first_token(const PerturbationSet& set, int32_t bos) {
    SINKLAB_CHECK(set.T >= 2, "perturb", "drop-bos needs windows of at least 2 tokens");
    PerturbationSet out;
    out.T = set.T - 1;
    for (int w = 0; w < set.window_count(); ++w) {
        const auto begin = set.windows.begin() + static_cast<long>(w) * set.T;
        SINKLAB_CHECK(*begin == bos, "perturb",
                      "drop-bos: window {} does not start with the BOS token {} (run with --bos on, or use mask-first:1)",
                      w + 1, bos);
        out.windows.insert(out.windows.end(), begin + 1, begin + set.T);
    }
    for (const Perturbation& p : set.perturbations) {
        SINKLAB_CHECK(p.first >= 1, "perturb", "drop-bos: a perturbation replaces the BOS token itself");
        out.perturbations.push_back({p.window, p.first - 1, p.replacement});
    }
    out.loss = set.loss;
    out.loss_description = set.loss_description;
    const auto without_first = [T = set.T](const std::vector<int32_t>& rows) {
        std::vector<int32_t> out_rows;
        for (size_t at = 0; at < rows.size(); at += T)
            out_rows.insert(out_rows.end(), rows.begin() + static_cast<long>(at) + 1, rows.begin() + static_cast<long>(at) + T);
        return out_rows;
    };
    out.loss_tokens = without_first(set.loss_tokens);
    out.loss_targets = without_first(set.loss_targets);
    out.description = set.description + ", BOS dropped";
    return out;
}

}  // namespace sinklab
