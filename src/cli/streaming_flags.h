#pragma once
// The flags of a streaming KV cache that `stream` and `generate` share: --positions, --kv and
// --kv-exact (docs/streaming.md). Each command adds its own policy flag (--policy, --cache).
#include <string>

#include <CLI/CLI.hpp>

#include "stream/streaming_cache.h"

namespace sinklab::cli {

struct StreamingFlags {
    std::string positions = "reindexed";
    std::string kv = "f32";
    std::string kv_exact = "none";
};

void add_streaming_flags(CLI::App* cmd, StreamingFlags& flags);
// Throws naming the flag for a bad value. max_cache is left to the command.
StreamingOptions parse_streaming_flags(const StreamingFlags& flags);

}  // namespace sinklab::cli
