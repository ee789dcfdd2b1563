#include "stream/long_stream.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "core/progress.h"
#include "core/resident_memory.h"
#include "ops/cross_entropy.h"

namespace sinklab {

double PolicyStream::mean_nll() const {
    double sum = 0.0;
    for (float x : nll) sum += x;
    return nll.empty() ? 0.0 : sum / static_cast<double>(nll.size());
}

double PolicyStream::ppl() const { return std::exp(mean_nll()); }

double PolicyStream::tokens_per_s() const { return seconds > 0 ? static_cast<double>(nll.size()) / seconds : 0.0; }

PolicyStream run_policy_stream(Transformer& model, const CachePolicy& policy, std::span<const int32_t> tokens,
                               const LongStreamOptions& options) {
    SINKLAB_CHECK(tokens.size() >= 2, "stream", "a stream needs at least 2 tokens (one prediction), got {}",
                  tokens.size());
    SINKLAB_CHECK(options.every >= 1, "stream", "--every must be at least 1, got {}", options.every);
    StreamingCache cache(model, policy, options.streaming);
    PolicyStream run;
    run.policy = cache.policy();
    run.options = cache.options();
    run.cache_bytes = cache.cache_bytes();
    const int64_t N = static_cast<int64_t>(tokens.size()) - 1;
    const int V = model.config().vocab_size;
    run.nll.reserve(static_cast<size_t>(N));

    Progress progress(policy_name(run.policy), N, options.progress);
    using Clock = std::chrono::steady_clock;
    const Clock::time_point start = Clock::now();
    Clock::time_point last_sample = start;
    double sum = 0.0, recent_sum = 0.0;
    int64_t recent = 0;
    auto take_sample = [&](int64_t done) {
        const Clock::time_point now = Clock::now();
        StreamSample s;
        s.tokens = done;
        s.ppl = std::exp(sum / static_cast<double>(done));
        s.ppl_recent = std::exp(recent_sum / static_cast<double>(recent));
        s.tokens_per_s = static_cast<double>(recent) / std::max(std::chrono::duration<double>(now - last_sample).count(), 1e-9);
        s.rss_bytes = resident_bytes();
        run.peak_rss_bytes = std::max(run.peak_rss_bytes, s.rss_bytes);
        run.samples.push_back(s);
        last_sample = now;
        recent_sum = 0.0;
        recent = 0;
        progress.update(done, fmt::format("ppl {:.3f}, last {} {:.3f}, {:.0f} tok/s, RSS {:.1f} MiB", s.ppl,
                                          options.every, s.ppl_recent, s.tokens_per_s, s.rss_bytes / 1048576.0));
        if (options.on_sample) options.on_sample(run, s);
    };
    for (int64_t t = 0; t < N; ++t) {
        if (!cache.can_take(1)) {
            run.stopped = fmt::format("the dense cache reached its bound of {} tokens after {} predictions "
                                      "(--max-cache raises it)",
                                      policy_capacity(run.policy), t);
            break;
        }
        const float* logits = cache.step(&tokens[static_cast<size_t>(t)], 1);
        const int32_t target = tokens[static_cast<size_t>(t) + 1];
        SINKLAB_CHECK(target >= 0 && target < V, "stream", "token id {} at {} is outside the vocabulary (size {})",
                      target, t + 1, V);
        float nll = 0.0f;
        cross_entropy_forward_backward(&nll, nullptr, logits, &target, 1, V);
        run.nll.push_back(nll);
        sum += nll;
        recent_sum += nll;
        ++recent;
        if ((t + 1) % options.every == 0) take_sample(t + 1);
        else progress.update(t + 1);
    }
    const int64_t done = static_cast<int64_t>(run.nll.size());
    if (recent > 0) take_sample(done);
    run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    progress.finish(fmt::format("ppl {:.3f}, {:.0f} tok/s{}", run.ppl(), run.tokens_per_s(),
                                run.stopped.empty() ? "" : ", stopped early"));
    return run;
}

nlohmann::json to_json(const PolicyStream& run) {
    nlohmann::json settings = {{"capacity", policy_capacity(run.policy)},
                               {"positions", to_string(run.options.positions)},
                               {"kv", to_string(run.options.kv)},
                               {"kv_exact", to_string(run.options.exact)}};
    if (run.options.kv != KvPrecision::f32) settings["kv_group"] = kKvGroup;
    for (const auto& [key, value] : policy_settings(run.policy)) settings[key] = value;
    nlohmann::json samples = nlohmann::json::array();
    for (const StreamSample& s : run.samples)
        samples.push_back({{"tokens", s.tokens},
                           {"ppl", s.ppl},
                           {"ppl_recent", s.ppl_recent},
                           {"tokens_per_s", s.tokens_per_s},
                           {"rss_bytes", s.rss_bytes}});
    nlohmann::json nll = nlohmann::json::array();
    for (float x : run.nll) nll.push_back(std::round(static_cast<double>(x) * 1e6) / 1e6);
    return {{"policy", policy_name(run.policy)},
            {"kind", policy_kind(run.policy)},
            {"settings", settings},
            {"summary",
             {{"tokens", run.nll.size()},
              {"mean_nll", run.mean_nll()},
              {"ppl", run.ppl()},
              {"seconds", run.seconds},
              {"tokens_per_s", run.tokens_per_s()},
              {"cache_bytes", run.cache_bytes},
              {"peak_rss_bytes", run.peak_rss_bytes},
              {"stopped", run.stopped.empty() ? nlohmann::json(nullptr) : nlohmann::json(run.stopped)}}},
            {"samples", samples},
            {"nll", nll}};
}

}  // namespace sinklab
