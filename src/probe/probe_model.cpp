#include "probe/probe_model.h"

namespace sinklab {

ProbeModel load_probe_model(const std::filesystem::path& path) {
    ProbeModel p;
    p.model = load_model(path, &p.info);
    if (!p.info.tokenizer.empty())
        p.tokenizer = load_tokenizer(p.info.tokenizer);
    else if (p.info.source == "sinklab")  // byte-level; trained with --bos: vocab 257, BOS 256
        p.tokenizer = make_byte_tokenizer(p.info.bos_id.has_value());
    p.bos_id = p.tokenizer && p.tokenizer->bos_id ? p.tokenizer->bos_id : p.info.bos_id;
    p.adds_bos = p.tokenizer && p.tokenizer->add_bos_by_default;
    return p;
}

}  // namespace sinklab
