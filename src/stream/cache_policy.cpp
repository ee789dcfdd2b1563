#include "stream/cache_policy.h"

#include <algorithm>
#include <charconv>
#include <numeric>

#include <fmt/format.h>

#include "core/error.h"
#include "core/text.h"

namespace sinklab {

namespace {

// A cache size in tokens as written in a policy: digits only, at most 100 million (larger is
// no cache this machine could hold, and rejecting it here keeps a typo from allocating).
constexpr int kMaxPolicyTokens = 100'000'000;

int parse_count(const std::string& text, const std::string& what, const std::string& policy, const std::string& flag) {
    int value = -1;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    SINKLAB_CHECK(!text.empty() && ec == std::errc() && end == text.data() + text.size() && value >= 0 &&
                      value <= kMaxPolicyTokens,
                  "stream", "{} '{}': {} must be a whole number from 0 to {} (got '{}'); {}", flag, policy, what,
                  kMaxPolicyTokens, text, cache_policy_help());
    return value;
}

// Keeps the first `keep` ranks and drops the next ones: the span [keep, keep + count).
std::vector<int> rank_range(int first, int count) {
    std::vector<int> ranks(static_cast<size_t>(std::max(count, 0)));
    std::iota(ranks.begin(), ranks.end(), first);
    return ranks;
}

}  // namespace

std::string WindowCache::name() const { return fmt::format("window:{}", recent); }
std::string SinkCache::name() const { return fmt::format("sink:{}+{}", sinks, recent); }
std::string AutoSinkCache::name() const {
    return sinks == kDefaultSinkTokens ? fmt::format("sink:auto+{}", recent) : fmt::format("sink:auto{}+{}", sinks, recent);
}
std::string ContextShift::name() const {
    return context_given ? fmt::format("shift:{}/{}", keep, context) : fmt::format("shift:{}", keep);
}
std::string RecomputeWindow::name() const { return fmt::format("recompute:{}", window); }

std::vector<int> WindowCache::evict(int held, int incoming, std::span<const double>) const {
    return rank_range(0, held + incoming - capacity());
}

std::vector<int> SinkCache::evict(int held, int incoming, std::span<const double>) const {
    // StartRecentKVCache keeps k[0:start] and k[seq_len - recent : seq_len]
    return rank_range(sinks, held + incoming - capacity());
}

std::vector<int> AutoSinkCache::evict(int held, int incoming, std::span<const double> scores) const {
    const int excess = held + incoming - capacity();
    if (excess <= 0) return {};
    SINKLAB_ASSERT(static_cast<int>(scores.size()) == held);
    // The last capacity - incoming - sinks ranks stay; among the older ones the `sinks` with the
    // highest score stay (ties: the older one).
    const int older = held - (capacity() - incoming - sinks);
    std::vector<int> ranks(static_cast<size_t>(older));
    std::iota(ranks.begin(), ranks.end(), 0);
    std::stable_sort(ranks.begin(), ranks.end(), [&](int a, int b) { return scores[a] > scores[b]; });
    std::vector<int> dropped(ranks.begin() + std::min(sinks, older), ranks.end());
    std::sort(dropped.begin(), dropped.end());
    return dropped;
}

std::vector<int> ContextShift::evict(int held, int incoming, std::span<const double>) const {
    // main.cpp: if (n_past + n >= n_ctx) { n_discard = (n_past - n_keep) / 2; remove
    // [n_keep, n_keep + n_discard); shift the rest down by n_discard; n_past -= n_discard }.
    // A step too large for one halving halves again; the discarded spans join up.
    int discarded = 0;
    while (held - discarded + incoming >= context) {
        const int n_discard = (held - discarded - keep) / 2;
        SINKLAB_ASSERT(n_discard > 0);
        discarded += n_discard;
    }
    return rank_range(keep, discarded);
}

std::string policy_name(const CachePolicy& policy) {
    return std::visit([](const auto& p) { return p.name(); }, policy);
}

std::string policy_kind(const CachePolicy& policy) {
    static const char* const kinds[] = {"dense", "window", "sink", "sink_auto", "shift", "recompute"};
    return kinds[policy.index()];
}

std::vector<std::pair<std::string, int>> policy_settings(const CachePolicy& policy) {
    using Settings = std::vector<std::pair<std::string, int>>;
    struct Visitor {
        Settings operator()(const DenseCache& p) const { return {{"max_tokens", p.max_tokens}}; }
        Settings operator()(const WindowCache& p) const { return {{"recent", p.recent}}; }
        Settings operator()(const SinkCache& p) const { return {{"sinks", p.sinks}, {"recent", p.recent}}; }
        Settings operator()(const AutoSinkCache& p) const { return {{"sinks", p.sinks}, {"recent", p.recent}}; }
        Settings operator()(const ContextShift& p) const { return {{"keep", p.keep}, {"context", p.context}}; }
        Settings operator()(const RecomputeWindow& p) const { return {{"window", p.window}}; }
    };
    return std::visit(Visitor{}, policy);
}

int policy_capacity(const CachePolicy& policy) {
    return std::visit([](const auto& p) { return p.capacity(); }, policy);
}

int policy_max_step(const CachePolicy& policy) {
    return std::visit([](const auto& p) { return p.max_step(); }, policy);
}

std::vector<int> ranks_to_evict(const CachePolicy& policy, int held, int incoming, std::span<const double> sink_scores) {
    return std::visit([&](const auto& p) { return p.evict(held, incoming, sink_scores); }, policy);
}

std::string cache_policy_help() {
    return "policies: dense, window:W, sink:S+W (sink:W keeps S = 4), sink:auto+W (sink:autoS+W), shift:K "
           "(shift:K/N), recompute:W";
}

CachePolicy parse_cache_policy(const std::string& text, const std::string& flag) {
    const size_t colon = text.find(':');
    const std::string kind = text.substr(0, colon);
    const std::string arg = colon == std::string::npos ? "" : text.substr(colon + 1);
    auto count = [&](const std::string& part, const char* what) { return parse_count(part, what, text, flag); };
    auto need_arg = [&](const char* form) {
        SINKLAB_CHECK(colon != std::string::npos, "stream", "{} '{}': write it as {}; {}", flag, text, form,
                      cache_policy_help());
    };
    if (kind == "dense") {
        SINKLAB_CHECK(colon == std::string::npos, "stream",
                      "{} '{}': dense takes no size (its bound is --max-cache); {}", flag, text, cache_policy_help());
        return DenseCache{};
    }
    if (kind == "window") {
        need_arg("window:W");
        const int recent = count(arg, "W");
        SINKLAB_CHECK(recent >= 1, "stream", "{} '{}': a window keeps at least 1 token", flag, text);
        return WindowCache{recent};
    }
    if (kind == "sink") {
        need_arg("sink:S+W");
        const size_t plus = arg.find('+');
        const std::string first = plus == std::string::npos ? "" : arg.substr(0, plus);
        const std::string recent_text = plus == std::string::npos ? arg : arg.substr(plus + 1);
        const int recent = count(recent_text, "W");
        if (first.starts_with("auto")) {
            const int sinks = first == "auto" ? kDefaultSinkTokens : count(first.substr(4), "S");
            SINKLAB_CHECK(sinks + recent >= 1, "stream", "{} '{}': S + W is {}; a cache keeps at least 1 token", flag,
                          text, sinks + recent);
            return AutoSinkCache{sinks, recent};
        }
        const int sinks = plus == std::string::npos ? kDefaultSinkTokens : count(first, "S");
        SINKLAB_CHECK(sinks + recent >= 1, "stream", "{} '{}': S + W is {}; a cache keeps at least 1 token", flag, text,
                      sinks + recent);
        return SinkCache{sinks, recent};
    }
    if (kind == "shift") {
        need_arg("shift:K or shift:K/N");
        const size_t slash = arg.find('/');
        ContextShift shift;
        shift.keep = count(arg.substr(0, slash), "K");
        if (slash != std::string::npos) {
            shift.context = count(arg.substr(slash + 1), "N");
            shift.context_given = true;
            SINKLAB_CHECK(shift.context >= shift.keep + 3, "stream",
                          "{} '{}': the context N must exceed the kept K by at least 3 (N >= {})", flag, text,
                          shift.keep + 3);
        }
        return shift;
    }
    if (kind == "recompute") {
        need_arg("recompute:W");
        const int window = count(arg, "W");
        SINKLAB_CHECK(window >= 1, "stream", "{} '{}': recomputation needs a window of at least 1 token", flag, text);
        return RecomputeWindow{window};
    }
    fail("stream", "{} '{}': unknown policy; {}", flag, text, cache_policy_help());
}

std::vector<CachePolicy> parse_cache_policies(const std::string& list, const std::string& flag) {
    std::vector<CachePolicy> policies;
    for (const std::string& item : split_list(list)) policies.push_back(parse_cache_policy(item, flag));
    return policies;
}

}  // namespace sinklab
