// The heap-based merge loop against the rescanning loop the references use (llama2.c run.c,
// tiktoken byte_pair_merge): same result on random words with many tied priorities.
#include <gtest/gtest.h>

#include <map>

#include "core/rng.h"
#include "tokenizer/bpe_merge.h"

namespace sinklab {
namespace {

using MergeTable = std::map<std::pair<int32_t, int32_t>, BpeMerge<int>>;

// Merge the best (lowest priority, then leftmost) pair and rescan, until nothing merges.
std::vector<int32_t> rescanning_merge(std::vector<int32_t> ids, const MergeTable& table) {
    while (true) {
        int best = -1;
        BpeMerge<int> best_merge{};
        for (size_t i = 0; i + 1 < ids.size(); ++i) {
            auto it = table.find({ids[i], ids[i + 1]});
            if (it != table.end() && (best < 0 || it->second.priority < best_merge.priority)) {
                best = static_cast<int>(i);
                best_merge = it->second;
            }
        }
        if (best < 0) return ids;
        ids[best] = best_merge.id;
        ids.erase(ids.begin() + best + 1);
    }
}

TEST(BpeMerge, MatchesTheRescanningLoopOnRandomWords) {
    Rng rng(2024);
    for (int trial = 0; trial < 300; ++trial) {
        // A random merge table over a 4-symbol alphabet; few distinct priorities, so ties are common.
        MergeTable table;
        int32_t next_id = 4;
        for (int m = 0; m < 40; ++m) {
            const auto left = static_cast<int32_t>(rng.below(next_id));
            const auto right = static_cast<int32_t>(rng.below(next_id));
            table.emplace(std::make_pair(left, right), BpeMerge<int>{static_cast<int>(rng.below(6)), next_id++});
        }
        std::vector<int32_t> word(rng.below(40));
        for (int32_t& symbol : word) symbol = static_cast<int32_t>(rng.below(4));

        std::vector<BpeSymbol> symbols;
        for (uint32_t i = 0; i < word.size(); ++i) symbols.push_back({word[i], i, i + 1});
        const auto merged = bpe_merge<int>(symbols, [&](const BpeSymbol& a, const BpeSymbol& b) -> std::optional<BpeMerge<int>> {
            auto it = table.find({a.id, b.id});
            if (it == table.end()) return std::nullopt;
            return it->second;
        });
        ASSERT_EQ(merged, rescanning_merge(word, table)) << "trial " << trial;
    }
}

TEST(BpeMerge, SymbolsKeepTheBytesTheyCover) {
    // Merges that look at the covered bytes (as tiktoken's do): "ab" then "abc".
    const std::string word = "abc";
    std::vector<BpeSymbol> symbols{{0, 0, 1}, {1, 1, 2}, {2, 2, 3}};
    const auto merged = bpe_merge<int>(symbols, [&](const BpeSymbol& a, const BpeSymbol& b) -> std::optional<BpeMerge<int>> {
        const std::string covered = word.substr(a.begin, b.end - a.begin);
        if (covered == "ab") return BpeMerge<int>{0, 10};
        if (covered == "abc") return BpeMerge<int>{1, 11};
        return std::nullopt;
    });
    EXPECT_EQ(merged, (std::vector<int32_t>{11}));
}

}  // namespace
}  // namespace sinklab
