#include "cli/streaming_flags.h"

#include "ops/kv_quant.h"

namespace sinklab::cli {

void add_streaming_flags(CLI::App* cmd, StreamingFlags& flags) {
    cmd->add_option("--positions", flags.positions,
                    "reindexed: kept tokens take their places in the cache (StreamingLLM); absolute: each keeps its "
                    "position in the stream")
        ->capture_default_str();
    cmd->add_option("--kv", flags.kv,
                    "KV-cache precision: f32, int8 or int4 (KIVI's layout: keys per channel over groups of 32 "
                    "tokens, values per token over groups of 32 channels; the newest tokens wait in f32 until their "
                    "key group is complete)")
        ->capture_default_str();
    cmd->add_option("--kv-exact", flags.kv_exact,
                    "tokens a quantized cache keeps in f32: none, first:S (the first S), auto:S (the S most attended)")
        ->capture_default_str();
}

StreamingOptions parse_streaming_flags(const StreamingFlags& flags) {
    StreamingOptions options;
    options.positions = parse_stream_positions(flags.positions);
    options.kv = parse_kv_precision(flags.kv);
    options.exact = parse_exact_tokens(flags.kv_exact);
    return options;
}

}  // namespace sinklab::cli
