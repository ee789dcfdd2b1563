// Cache policies as values: names parse and print back, each keeps the tokens its definition says
// (StreamingLLM's StartRecentKVCache, llama.cpp's context shift, the most attended tokens), and bad
// names are one clear error each.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "stream/cache_policy.h"

namespace sinklab {
namespace {

// The held ranks left after dropping `ranks` from 0..held-1.
std::vector<int> kept_after(int held, const std::vector<int>& ranks) {
    std::vector<int> kept;
    for (int r = 0; r < held; ++r)
        if (!std::binary_search(ranks.begin(), ranks.end(), r)) kept.push_back(r);
    return kept;
}

std::vector<int> iota(int first, int count) {
    std::vector<int> v(static_cast<size_t>(count));
    std::iota(v.begin(), v.end(), first);
    return v;
}

std::string error_of(const std::string& text) {
    try {
        parse_cache_policy(text);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(CachePolicy, NamesParseAndPrintBack) {
    for (const char* name : {"dense", "window:252", "sink:4+252", "sink:0+255", "sink:auto+252", "sink:auto2+100",
                             "shift:4", "shift:4/64", "recompute:256"})
        EXPECT_EQ(policy_name(parse_cache_policy(name)), name);
    // sink:W keeps StreamingLLM's four initial tokens
    EXPECT_EQ(policy_name(parse_cache_policy("sink:252")), "sink:4+252");
    EXPECT_EQ(policy_name(parse_cache_policy("sink:auto4+8")), "sink:auto+8");
    const std::vector<CachePolicy> list = parse_cache_policies("dense,window:252,sink:4+252,recompute:256");
    ASSERT_EQ(list.size(), 4u);
    EXPECT_EQ(policy_kind(list[0]), "dense");
    EXPECT_EQ(policy_kind(list[1]), "window");
    EXPECT_EQ(policy_kind(list[2]), "sink");
    EXPECT_EQ(policy_kind(list[3]), "recompute");
    EXPECT_EQ(policy_kind(parse_cache_policy("sink:auto+3")), "sink_auto");
    EXPECT_EQ(policy_kind(parse_cache_policy("shift:0")), "shift");
}

TEST(CachePolicy, Capacities) {
    EXPECT_EQ(policy_capacity(parse_cache_policy("window:252")), 253);
    EXPECT_EQ(policy_capacity(parse_cache_policy("sink:4+252")), 257);
    EXPECT_EQ(policy_capacity(parse_cache_policy("sink:auto+60")), 65);
    EXPECT_EQ(policy_capacity(parse_cache_policy("shift:4/64")), 63);
    EXPECT_EQ(policy_capacity(parse_cache_policy("recompute:256")), 256);
}

TEST(CachePolicy, SinkKeepsTheFirstAndTheLast) {
    const SinkCache sink{4, 6};  // holds 10 between steps
    EXPECT_TRUE(sink.evict(9, 1, {}).empty());
    EXPECT_TRUE(sink.evict(10, 1, {}).empty());  // 10 held + 1 new = 11 = capacity
    EXPECT_EQ(sink.evict(11, 1, {}), std::vector<int>{4});
    // a step of 3 makes room for 3: the first 4 and the last 4 stay
    EXPECT_EQ(kept_after(11, sink.evict(11, 3, {})), (std::vector<int>{0, 1, 2, 3, 7, 8, 9, 10}));
    const SinkCache no_sinks{0, 5};
    EXPECT_EQ(kept_after(8, no_sinks.evict(8, 1, {})), iota(3, 5));
}

TEST(CachePolicy, WindowKeepsTheLast) {
    const WindowCache window{5};
    EXPECT_TRUE(window.evict(5, 1, {}).empty());
    EXPECT_EQ(kept_after(6, window.evict(6, 1, {})), iota(1, 5));
    EXPECT_EQ(kept_after(9, window.evict(9, 2, {})), iota(5, 4));
}

TEST(CachePolicy, ShiftHalvesTheRestWhenTheContextFills) {
    // n_ctx 12, n_keep 2: a one-token step with n_past + 1 >= 12 discards (n_past - 2) / 2
    const ContextShift shift{2, 12, true};
    EXPECT_TRUE(shift.evict(10, 1, {}).empty());
    EXPECT_EQ(shift.evict(11, 1, {}), iota(2, 4));  // n_past 11: n_discard = 9 / 2 = 4
    EXPECT_EQ(kept_after(11, shift.evict(11, 1, {})), (std::vector<int>{0, 1, 6, 7, 8, 9, 10}));
    // a long step halves again until it fits: 11 + 5 >= 12 -> drop 4 (7 held), 7 + 5 >= 12 -> drop 2
    EXPECT_EQ(shift.evict(11, 5, {}), iota(2, 6));
    // simulated as llama.cpp's main loop: n_past never reaches n_ctx
    int n_past = 0;
    for (int t = 0; t < 200; ++t) {
        n_past -= static_cast<int>(shift.evict(n_past, 1, {}).size());
        ++n_past;
        ASSERT_LE(n_past, shift.capacity());
    }
}

TEST(CachePolicy, AutoKeepsTheMostAttendedOlderTokens) {
    const AutoSinkCache automatic{2, 3};  // capacity 6: holds 5 between steps
    // 6 held, one step: the last 3 stay; among ranks 0..2 the two highest scores stay
    const std::vector<double> scores = {0.1, 0.9, 0.5, 0.0, 0.0, 0.0};
    EXPECT_EQ(kept_after(6, automatic.evict(6, 1, scores)), (std::vector<int>{1, 2, 3, 4, 5}));
    // ties keep the older token
    const std::vector<double> ties = {0.2, 0.2, 0.2, 0.0, 0.0, 0.0};
    EXPECT_EQ(kept_after(6, automatic.evict(6, 1, ties)), (std::vector<int>{0, 1, 3, 4, 5}));
    // a middle token with the highest score beats the first ones
    const std::vector<double> middle = {0.3, 0.1, 0.2, 0.8, 0.0, 0.0, 0.0};
    EXPECT_EQ(kept_after(7, automatic.evict(7, 1, middle)), (std::vector<int>{0, 3, 4, 5, 6}));
}

TEST(CachePolicy, BadNamesAreOneClearError) {
    EXPECT_NE(error_of("lru:5").find("unknown policy"), std::string::npos) << error_of("lru:5");
    EXPECT_NE(error_of("sink:0+0").find("S + W is 0"), std::string::npos) << error_of("sink:0+0");
    EXPECT_NE(error_of("sink:auto0+0").find("S + W is 0"), std::string::npos);
    EXPECT_NE(error_of("window:0").find("at least 1"), std::string::npos);
    EXPECT_NE(error_of("window").find("window:W"), std::string::npos);
    EXPECT_NE(error_of("window:-3").find("whole number"), std::string::npos);
    EXPECT_NE(error_of("window:12x").find("whole number"), std::string::npos);
    EXPECT_NE(error_of("window:999999999999").find("whole number"), std::string::npos);
    EXPECT_NE(error_of("shift:4/5").find("N >= 7"), std::string::npos);
    EXPECT_NE(error_of("recompute:0").find("at least 1"), std::string::npos);
    EXPECT_NE(error_of("dense:5").find("--max-cache"), std::string::npos);
    EXPECT_THROW(parse_cache_policies("dense,,window:3"), Error);
    for (const char* bad : {"lru:5", "sink:0+0", "window:0"}) {
        const std::string message = error_of(bad);
        EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 0) << bad;
    }
}

}  // namespace
}  // namespace sinklab
