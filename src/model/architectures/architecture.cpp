#include "model/architectures/architecture.h"

#include <cstring>
#include <string>

#include <fmt/format.h>

#include "core/error.h"

namespace sinklab {

std::string unexportable_features(const ModelConfig& c) {
    const ModelConfig plain;
    if (c.attention.name() != "softmax") return "attention '" + c.attention.name() + "' is not softmax attention";
    if (c.attention.scale != plain.attention.scale) return "the attention scale is not 1/sqrt(head size)";
    if (c.prefix > 0) return "prefix-LM attention has no Hugging Face equivalent";
    if (!c.layer_windows.empty()) return "per-layer attention windows";
    if (c.norm_placement != NormPlacement::pre) return "norm placement '" + to_string(c.norm_placement) + "'";
    if (!c.norm_affine || c.norm_weight_offset != 0.0f) return "the norms' weights differ from (1 + 0) * w";
    if (c.parallel_residual) return "a parallel residual";
    if (c.qk_norm != QkNorm::none) return "QK-norm";
    if (c.attention.softcap > 0 || c.final_logit_softcap > 0) return "logit soft-capping";
    if (c.embed_scale != 1.0f) return "scaled embeddings";
    if (c.moe()) return "a mixture-of-experts MLP";
    if (!c.causal) return "bidirectional attention (an encoder)";
    if (c.position_offset > 0 || c.padding_id || c.type_vocab_size > 0 || c.embed_norm || c.head_transform ||
        c.head_bias)
        return "an encoder's embeddings or masked-LM head";
    return "";
}

double config_number(float value) { return std::stod(fmt::format("{}", value)); }

Tensor parameter_tensor(const Transformer& model, const std::string& name) {
    const ParamInfo* p = model.find(name);
    SINKLAB_ASSERT(p != nullptr);
    Tensor t(p->shape);
    std::memcpy(t.data(), model.param_data() + p->offset, p->numel * sizeof(float));
    return t;
}

}  // namespace sinklab
