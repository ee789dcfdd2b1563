#include "model/config.h"

#include <algorithm>

#include "core/error.h"
#include "core/json_numbers.h"

namespace sinklab {

namespace {

template <typename E>
struct EnumNames {
    std::vector<std::pair<E, std::string>> names;
    std::string to_string(E v) const {
        for (const auto& [e, n] : names)
            if (e == v) return n;
        return "?";
    }
    E parse(const std::string& s, const std::string& what) const {
        std::string known;
        for (const auto& [e, n] : names) {
            if (n == s) return e;
            known += (known.empty() ? "" : ", ") + n;
        }
        fail("config", "unknown {} '{}' (known: {})", what, s, known);
    }
};

const EnumNames<NormKind> kNorms{{{NormKind::layernorm, "layernorm"}, {NormKind::rmsnorm, "rmsnorm"}}};
const EnumNames<NormPlacement> kPlacements{{{NormPlacement::pre, "pre"},
                                             {NormPlacement::post, "post"},
                                             {NormPlacement::sandwich, "sandwich"},
                                             {NormPlacement::output, "output"}}};
const EnumNames<PositionKind> kPositions{{{PositionKind::none, "nope"},
                                          {PositionKind::learned, "learned"},
                                          {PositionKind::sinusoidal, "sinusoidal"},
                                          {PositionKind::rope, "rope"},
                                          {PositionKind::alibi, "alibi"},
                                          {PositionKind::relative, "relative"}}};
const EnumNames<MlpKind> kMlps{{{MlpKind::gelu, "gelu"},
                                 {MlpKind::gelu_erf, "gelu_erf"},
                                 {MlpKind::relu, "relu"},
                                 {MlpKind::swiglu, "swiglu"},
                                 {MlpKind::geglu, "geglu"},
                                 {MlpKind::swiglu_clamped, "swiglu_clamped"}}};
const EnumNames<QkNorm> kQkNorms{{{QkNorm::none, "none"}, {QkNorm::per_head, "per_head"}, {QkNorm::full, "full"}}};

}  // namespace

std::string to_string(NormKind v) { return kNorms.to_string(v); }
std::string to_string(NormPlacement v) { return kPlacements.to_string(v); }
std::string to_string(PositionKind v) { return kPositions.to_string(v); }
std::string to_string(MlpKind v) { return kMlps.to_string(v); }
std::string to_string(QkNorm v) { return kQkNorms.to_string(v); }
NormKind parse_norm(const std::string& s) { return kNorms.parse(s, "norm"); }
NormPlacement parse_norm_placement(const std::string& s) { return kPlacements.parse(s, "norm placement"); }
PositionKind parse_positions(const std::string& s) { return kPositions.parse(s, "positional encoding (pe)"); }
MlpKind parse_mlp(const std::string& s) { return kMlps.parse(s, "mlp"); }
QkNorm parse_qk_norm(const std::string& s) { return kQkNorms.parse(s, "qk_norm"); }

int ModelConfig::ff() const {
    if (d_ff > 0) return d_ff;
    if (gated_mlp()) {
        // Llama's rule: 2/3 of 4C, rounded up to a multiple of 32, so parameters match a 4C GELU MLP.
        int f = (8 * d_model) / 3;
        return (f + 31) / 32 * 32;
    }
    return 4 * d_model;
}

ModelConfig ModelConfig::for_style(const std::string& style) {
    ModelConfig c;
    if (style == "gpt2") return c;
    if (style == "llama") {
        c.style = "llama";
        c.norm = NormKind::rmsnorm;
        c.positions = PositionKind::rope;
        c.mlp = MlpKind::swiglu;
        c.linear_bias = false;
        return c;
    }
    fail("config", "unknown style '{}' (known: gpt2, llama)", style);
}

void ModelConfig::validate() const {
    auto check_positive = [](int v, const char* key) {
        SINKLAB_CHECK(v > 0, "config", "{} must be positive, got {}", key, v);
    };
    check_positive(vocab_size, "vocab_size");
    check_positive(d_model, "d_model");
    check_positive(n_layers, "layers");
    check_positive(n_heads, "heads");
    check_positive(n_kv_heads, "kv_heads");
    check_positive(max_seq_len, "max_seq_len");
    // Sizes are ints and buffers are indexed by products of them: each size stays at most 2^24
    // (16,777,216; published models reach vocabularies of 262,144 and widths of 53,248) and the
    // layers at most 4096, so that no width below overflows; whether the memory they ask for fits
    // is the callers' check (model/memory_estimate.h), made before allocating.
    constexpr int kMaxSize = 1 << 24, kMaxLayers = 4096;
    for (const auto& [value, key] : {std::pair{vocab_size, "vocab_size"}, {d_model, "d_model"}, {n_heads, "heads"},
                                     {n_kv_heads, "kv_heads"}, {head_dim, "head_dim"}, {d_ff, "d_ff"},
                                     {max_seq_len, "max_seq_len"}, {moe_experts, "moe_experts"},
                                     {type_vocab_size, "type_vocab_size"}, {position_offset, "position_offset"}})
        SINKLAB_CHECK(value <= kMaxSize, "config", "{} is {}, above sinklab's limit of 2^24 = {}", key, value, kMaxSize);
    SINKLAB_CHECK(n_layers <= kMaxLayers, "config", "layers is {}, above sinklab's limit of {}", n_layers, kMaxLayers);
    SINKLAB_CHECK(d_ff >= 0 && head_dim >= 0, "config", "d_ff and head_dim must be >= 0 (0: the default), got {} and {}",
                  d_ff, head_dim);
    const int64_t head_size = head_dim > 0 ? head_dim : d_model / n_heads;
    SINKLAB_CHECK((static_cast<int64_t>(n_heads) + 2 * static_cast<int64_t>(n_kv_heads)) * head_size <= kMaxSize,
                  "config", "the q, k and v projections ((heads {} + 2 kv_heads {}) x head size {}) are wider than 2^24",
                  n_heads, n_kv_heads, head_size);
    if (head_dim == 0)
        SINKLAB_CHECK(d_model % n_heads == 0, "config", "heads ({}) must divide d_model ({})", n_heads, d_model);
    SINKLAB_CHECK(n_heads % n_kv_heads == 0, "config", "kv_heads ({}) must divide heads ({})", n_kv_heads, n_heads);
    if (positions == PositionKind::rope)
        SINKLAB_CHECK(hs() % 2 == 0, "config", "RoPE needs an even head size, got {}", hs());
    SINKLAB_CHECK(window >= 0, "config", "window must be >= 0, got {}", window);
    SINKLAB_CHECK(prefix >= 0, "config", "prefix must be >= 0, got {}", prefix);
    SINKLAB_CHECK(norm_eps > 0, "config", "norm_eps must be positive");
    SINKLAB_CHECK(init_std > 0, "config", "init_std must be positive");
    check_positive(hs(), "head_dim");
    SINKLAB_CHECK(rotary_dim >= 0 && rotary_dim <= hs() && rotary_dim % 2 == 0, "config",
                  "rotary_dim must be even and at most the head size {}, got {}", hs(), rotary_dim);
    SINKLAB_CHECK(rope_inv_freq.empty() || static_cast<int>(rope_inv_freq.size()) == rope_dim() / 2, "config",
                  "rope_inv_freq has {} entries, expected rotary_dim / 2 = {}", rope_inv_freq.size(), rope_dim() / 2);
    SINKLAB_CHECK(rope_long_inv_freq.empty() || static_cast<int>(rope_long_inv_freq.size()) == rope_dim() / 2,
                  "config", "rope_long_inv_freq has {} entries, expected rotary_dim / 2 = {}",
                  rope_long_inv_freq.size(), rope_dim() / 2);
    SINKLAB_CHECK(rope_long_inv_freq.empty() == (rope_long_from == 0), "config",
                  "rope_long_inv_freq and rope_long_from go together (longrope)");
    SINKLAB_CHECK(rope_attention_factor > 0, "config", "rope_attention_factor must be positive");
    SINKLAB_CHECK(layer_windows.empty() || static_cast<int>(layer_windows.size()) == n_layers, "config",
                  "layer_windows has {} entries for {} layers", layer_windows.size(), n_layers);
    for (int w : layer_windows) SINKLAB_CHECK(w >= 0, "config", "layer_windows entries must be >= 0, got {}", w);
    SINKLAB_CHECK(attention.softcap >= 0 && final_logit_softcap >= 0, "config", "softcaps must be >= 0 (0 = off)");
    SINKLAB_CHECK(embed_scale > 0, "config", "embed_scale must be positive");
    SINKLAB_CHECK(norm_weight_offset == 0.0f || (norm == NormKind::rmsnorm && norm_affine), "config",
                  "norm_weight_offset applies to RMSNorm weights only");
    SINKLAB_CHECK(!has_score_bias() || attention.kind != AttentionKind::linear_elu, "config",
                  "pe '{}' adds a bias to attention scores, and attention 'linear_elu' (a kernel design) has none",
                  to_string(positions));
    SINKLAB_CHECK(attention.softcap == 0 || attention.kind != AttentionKind::linear_elu, "config",
                  "attn_logit_softcap caps attention scores, and attention 'linear_elu' (a kernel design) has none");
    SINKLAB_CHECK(!parallel_residual || norm_placement == NormPlacement::pre, "config",
                  "parallel_residual needs norm_placement 'pre', got '{}'", to_string(norm_placement));
    SINKLAB_CHECK(swiglu_limit > 0 && swiglu_alpha > 0, "config", "swiglu_limit and swiglu_alpha must be positive");
    SINKLAB_CHECK(moe_experts >= 0, "config", "moe_experts must be >= 0, got {}", moe_experts);
    if (moe())
        SINKLAB_CHECK(moe_top_k >= 1 && moe_top_k <= moe_experts, "config",
                      "moe_top_k must be between 1 and moe_experts ({}), got {}", moe_experts, moe_top_k);
    else
        SINKLAB_CHECK(moe_top_k == 0, "config", "moe_top_k ({}) needs moe_experts", moe_top_k);
    SINKLAB_CHECK(!moe() || d_model % 32 == 0, "config",
                  "the experts' MXFP4 rows come in blocks of 32 values: d_model ({}) must be a multiple of 32", d_model);
    SINKLAB_CHECK(!moe() || ff() % 32 == 0, "config",
                  "the experts' MXFP4 rows come in blocks of 32 values: d_ff ({}) must be a multiple of 32", ff());
    SINKLAB_CHECK(causal || (window == 0 && layer_windows.empty() && prefix == 0), "config",
                  "window and prefix restrict causal attention; a bidirectional model (causal false) has neither");
    SINKLAB_CHECK(position_offset >= 0, "config", "position_offset must be >= 0, got {}", position_offset);
    SINKLAB_CHECK((position_offset == 0 && !padding_id) || positions == PositionKind::learned, "config",
                  "position_offset and padding_id apply to learned positions, not pe '{}'", to_string(positions));
    SINKLAB_CHECK(!padding_id || (*padding_id >= 0 && *padding_id < position_rows() && *padding_id < vocab_size &&
                                  !attention.uses_sink_token()),
                  "config", "padding_id must be a token id and a row of the position table (0..{}), without a sink token",
                  std::min(position_rows(), vocab_size) - 1);
    SINKLAB_CHECK(type_vocab_size >= 0, "config", "type_vocab_size must be >= 0, got {}", type_vocab_size);
    SINKLAB_CHECK(!embed_norm || !attention.uses_sink_token(), "config",
                  "embed_norm with attention 'sink_token' is not supported (the sink token's row would skip the norm)");
    SINKLAB_CHECK(!head_transform || (*head_transform != MlpKind::swiglu && *head_transform != MlpKind::geglu), "config",
                  "head_transform takes a plain activation (gelu, gelu_erf, relu), not the gated '{}'",
                  to_string(*head_transform));
}

std::string ModelConfig::inference_only_features() const {
    std::vector<std::string> features;
    if (parallel_residual) features.push_back("parallel_residual");
    if (norm_placement == NormPlacement::sandwich || norm_placement == NormPlacement::output)
        features.push_back("norm_placement " + to_string(norm_placement));
    if (qk_norm != QkNorm::none) features.push_back("qk_norm " + to_string(qk_norm));
    if (final_logit_softcap > 0) features.push_back("final_logit_softcap");
    if (mlp == MlpKind::swiglu_clamped) features.push_back("mlp swiglu_clamped");
    if (moe()) features.push_back("a mixture-of-experts MLP (MXFP4 experts)");
    if (position_offset > 0) features.push_back("position_offset");
    if (type_vocab_size > 0) features.push_back("type_vocab_size");
    if (embed_norm) features.push_back("embed_norm");
    if (head_transform) features.push_back("head_transform");
    if (head_bias) features.push_back("head_bias");
    std::string list;
    for (const auto& f : features) list += (list.empty() ? "" : ", ") + f;
    return list;
}

nlohmann::json ModelConfig::to_json() const {
    nlohmann::json j = {{"style", style},
            {"vocab_size", vocab_size},
            {"d_model", d_model},
            {"layers", n_layers},
            {"heads", n_heads},
            {"kv_heads", n_kv_heads},
            {"head_dim", hs()},
            {"d_ff", ff()},
            {"max_seq_len", max_seq_len},
            {"norm", to_string(norm)},
            {"norm_placement", to_string(norm_placement)},
            {"pe", to_string(positions)},
            {"mlp", to_string(mlp)},
            {"linear_bias", linear_bias},
            {"tied_embeddings", tied_embeddings},
            {"norm_eps", norm_eps},
            {"rope_theta", rope_theta},
            {"attention", attention.name()},
            {"window", window},
            {"prefix", prefix},
            {"init_std", init_std}};
    // The pretrained families' extras appear only when set, so sinklab's own configs stay as they were.
    const ModelConfig defaults;
    if (attention.scale != defaults.attention.scale) j["attention_scale"] = attention.scale;
    if (qkv_bias) j["qkv_bias"] = *qkv_bias;
    if (out_bias) j["out_bias"] = *out_bias;
    if (norm_affine != defaults.norm_affine) j["norm_affine"] = norm_affine;
    if (norm_weight_offset != defaults.norm_weight_offset) j["norm_weight_offset"] = norm_weight_offset;
    if (rotary_dim != defaults.rotary_dim) j["rotary_dim"] = rotary_dim;
    if (!rope_inv_freq.empty()) j["rope_inv_freq"] = rope_inv_freq;
    if (rope_attention_factor != defaults.rope_attention_factor) j["rope_attention_factor"] = rope_attention_factor;
    if (!rope_long_inv_freq.empty()) j["rope_long_inv_freq"] = rope_long_inv_freq;
    if (rope_long_from != defaults.rope_long_from) j["rope_long_from"] = rope_long_from;
    if (!layer_windows.empty()) j["layer_windows"] = layer_windows;
    if (parallel_residual) j["parallel_residual"] = parallel_residual;
    if (qk_norm != defaults.qk_norm) j["qk_norm"] = to_string(qk_norm);
    if (attention.softcap != defaults.attention.softcap) j["attn_logit_softcap"] = attention.softcap;
    if (final_logit_softcap != defaults.final_logit_softcap) j["final_logit_softcap"] = final_logit_softcap;
    if (embed_scale != defaults.embed_scale) j["embed_scale"] = embed_scale;
    if (mlp == MlpKind::swiglu_clamped) {
        j["swiglu_limit"] = swiglu_limit;
        j["swiglu_alpha"] = swiglu_alpha;
    }
    if (moe()) {
        j["moe_experts"] = moe_experts;
        j["moe_top_k"] = moe_top_k;
    }
    if (causal != defaults.causal) j["causal"] = causal;
    if (position_offset != defaults.position_offset) j["position_offset"] = position_offset;
    if (padding_id) j["padding_id"] = *padding_id;
    if (type_vocab_size != defaults.type_vocab_size) j["type_vocab_size"] = type_vocab_size;
    if (embed_norm) j["embed_norm"] = embed_norm;
    if (head_transform) j["head_transform"] = to_string(*head_transform);
    if (head_bias) j["head_bias"] = head_bias;
    return j;
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j, const std::string& source) {
    SINKLAB_CHECK(j.is_object(), "config", "{}: expected a JSON object", source);
    ModelConfig c = for_style(j.value("style", std::string("gpt2")));
    try {
        for (const auto& [key, value] : j.items()) {
            if (key == "style") continue;
            else if (key == "vocab_size") c.vocab_size = json_int(value, "config", key);
            else if (key == "d_model") c.d_model = json_int(value, "config", key);
            else if (key == "layers") c.n_layers = json_int(value, "config", key);
            else if (key == "heads") c.n_heads = json_int(value, "config", key);
            else if (key == "kv_heads") c.n_kv_heads = json_int(value, "config", key);
            else if (key == "head_dim") c.head_dim = json_int(value, "config", key);
            else if (key == "d_ff") c.d_ff = json_int(value, "config", key);
            else if (key == "max_seq_len") c.max_seq_len = json_int(value, "config", key);
            else if (key == "norm") c.norm = parse_norm(value.get<std::string>());
            else if (key == "norm_placement") c.norm_placement = parse_norm_placement(value.get<std::string>());
            else if (key == "pe") c.positions = parse_positions(value.get<std::string>());
            else if (key == "mlp") c.mlp = parse_mlp(value.get<std::string>());
            else if (key == "linear_bias") c.linear_bias = value.get<bool>();
            else if (key == "tied_embeddings") c.tied_embeddings = value.get<bool>();
            else if (key == "norm_eps") c.norm_eps = json_float(value, "config", key);
            else if (key == "rope_theta") c.rope_theta = value.get<double>();
            else if (key == "attention") c.attention = AttentionSpec::parse(value.get<std::string>());
            else if (key == "window") c.window = json_int(value, "config", key);
            else if (key == "prefix") c.prefix = json_int(value, "config", key);
            else if (key == "init_std") c.init_std = json_float(value, "config", key);
            else if (key == "attention_scale") c.attention.scale = json_float(value, "config", key);
            else if (key == "qkv_bias") c.qkv_bias = value.get<bool>();
            else if (key == "out_bias") c.out_bias = value.get<bool>();
            else if (key == "norm_affine") c.norm_affine = value.get<bool>();
            else if (key == "norm_weight_offset") c.norm_weight_offset = json_float(value, "config", key);
            else if (key == "rotary_dim") c.rotary_dim = json_int(value, "config", key);
            else if (key == "rope_inv_freq") c.rope_inv_freq = value.get<std::vector<double>>();
            else if (key == "rope_attention_factor") c.rope_attention_factor = value.get<double>();
            else if (key == "rope_long_inv_freq") c.rope_long_inv_freq = value.get<std::vector<double>>();
            else if (key == "rope_long_from") c.rope_long_from = json_int(value, "config", key);
            else if (key == "layer_windows") {
                c.layer_windows.clear();
                for (const auto& w : value) c.layer_windows.push_back(json_int(w, "config", "layer_windows entry"));
            }
            else if (key == "parallel_residual") c.parallel_residual = value.get<bool>();
            else if (key == "qk_norm") c.qk_norm = parse_qk_norm(value.get<std::string>());
            else if (key == "attn_logit_softcap") c.attention.softcap = json_float(value, "config", key);
            else if (key == "final_logit_softcap") c.final_logit_softcap = json_float(value, "config", key);
            else if (key == "embed_scale") c.embed_scale = json_float(value, "config", key);
            else if (key == "swiglu_limit") c.swiglu_limit = json_float(value, "config", key);
            else if (key == "swiglu_alpha") c.swiglu_alpha = json_float(value, "config", key);
            else if (key == "moe_experts") c.moe_experts = json_int(value, "config", key);
            else if (key == "moe_top_k") c.moe_top_k = json_int(value, "config", key);
            else if (key == "causal") c.causal = value.get<bool>();
            else if (key == "position_offset") c.position_offset = json_int(value, "config", key);
            else if (key == "padding_id") c.padding_id = json_int(value, "config", key);
            else if (key == "type_vocab_size") c.type_vocab_size = json_int(value, "config", key);
            else if (key == "embed_norm") c.embed_norm = value.get<bool>();
            else if (key == "head_transform") c.head_transform = parse_mlp(value.get<std::string>());
            else if (key == "head_bias") c.head_bias = value.get<bool>();
            else fail("config", "{}: unknown model key '{}'", source, key);
        }
    } catch (const nlohmann::json::exception& e) {
        fail("config", "{}: {}", source, e.what());
    } catch (const Error& e) {
        throw Error("config", source + ": " + std::string(e.what()));
    }
    c.validate();
    return c;
}

}  // namespace sinklab
