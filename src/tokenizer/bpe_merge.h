#pragma once
// The merge loop shared by byte-level BPE, tiktoken and llama2.c: repeatedly merge the adjacent
// pair with the best priority (the leftmost among equals) until no pair merges. Each reference
// rescans the whole word per merge (O(n^2)); a heap with lazy invalidation gives the same result
// in O(n log n), which matters for long pieces such as runs of whitespace or base64 blobs.
#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

namespace sinklab {

// A symbol of the word being merged: its token id and the bytes [begin, end) of the word it covers.
struct BpeSymbol {
    int32_t id;
    uint32_t begin, end;
};

// What merging two adjacent symbols gives; a lower priority merges first.
template <typename Priority>
struct BpeMerge {
    Priority priority;
    int32_t id;
};

// find_merge(left, right) -> std::optional<BpeMerge<Priority>>. Returns the ids left after merging.
template <typename Priority, typename FindMerge>
std::vector<int32_t> bpe_merge(std::vector<BpeSymbol> symbols, FindMerge&& find_merge) {
    const int n = static_cast<int>(symbols.size());
    std::vector<int> prev(n), next(n);
    for (int i = 0; i < n; ++i) {
        prev[i] = i - 1;
        next[i] = i + 1 < n ? i + 1 : -1;
    }
    std::vector<bool> alive(n, true);

    struct Candidate {
        Priority priority;
        int left;                       // position of the left symbol (positions keep word order)
        int32_t left_id, right_id;      // the pair as it was when queued, to detect stale entries
        int32_t merged_id;
        bool operator>(const Candidate& other) const {
            if (priority != other.priority) return priority > other.priority;
            return left > other.left;
        }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
    auto push_pair = [&](int left) {
        if (left < 0 || next[left] < 0) return;
        const BpeSymbol& a = symbols[left];
        const BpeSymbol& b = symbols[next[left]];
        if (auto merge = find_merge(a, b)) queue.push({merge->priority, left, a.id, b.id, merge->id});
    };
    for (int i = 0; i + 1 < n; ++i) push_pair(i);

    while (!queue.empty()) {
        Candidate best = queue.top();
        queue.pop();
        const int left = best.left;
        const int right = alive[left] ? next[left] : -1;
        if (right < 0 || symbols[left].id != best.left_id || symbols[right].id != best.right_id) {
            continue;  // one side was merged away since this pair was queued
        }
        symbols[left] = {best.merged_id, symbols[left].begin, symbols[right].end};
        alive[right] = false;
        next[left] = next[right];
        if (next[left] >= 0) prev[next[left]] = left;
        push_pair(prev[left]);
        push_pair(left);
    }

    std::vector<int32_t> ids;
    for (int i = n > 0 ? 0 : -1; i >= 0; i = next[i]) ids.push_back(symbols[i].id);
    return ids;
}

}  // namespace sinklab
