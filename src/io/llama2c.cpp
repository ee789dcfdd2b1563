#include "io/llama2c.h"

#include <array>
#include <cstring>

#include "core/error.h"
#include "io/mapped_file.h"

namespace sinklab {

namespace fs = std::filesystem;

namespace {

constexpr const char* kModule = "llama2c";
constexpr int64_t kHeaderBytes = 7 * sizeof(int32_t);
// export.py's version 1 and 2 files begin with this uint32 ("ak42"), then a version number.
constexpr uint32_t kVersionedExportMagic = 0x616b3432;

// llama2.c applies RoPE to consecutive pairs (0, 1), (2, 3), ... of each head; Hugging Face's
// rotate_half pairs dimension j with j + HS/2. Reordering each head's rows of wq and wk so that old
// row 2j becomes row j and old row 2j+1 becomes row j + HS/2 makes rotate_half rotate exactly the
// pairs llama2.c rotated, with the same frequency theta^(-2j/HS) per pair: the attention scores are
// identical. This is the `permute` of transformers' convert_llama_weights_to_hf.py,
//   w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2),
// which llama2.c's export.py undoes when it exports a Hugging Face model.
Tensor permute_for_rotate_half(const float* weight, int64_t n_heads, int64_t head_size, int64_t in_features) {
    Tensor out({n_heads * head_size, in_features});  // (NH * HS, C)
    const int64_t half = head_size / 2;
    for (int64_t h = 0; h < n_heads; ++h)
        for (int64_t j = 0; j < half; ++j)
            for (int64_t parity = 0; parity < 2; ++parity) {
                const float* src = weight + (h * head_size + 2 * j + parity) * in_features;
                float* dst = out.data() + (h * head_size + parity * half + j) * in_features;
                std::memcpy(dst, src, in_features * sizeof(float));
            }
    return out;
}

Llama2cConfig parse_config(const fs::path& path, const MappedFile& file) {
    if (file.size() < static_cast<size_t>(kHeaderBytes))
        fail(kModule, "{}: file is {} bytes, shorter than the {}-byte llama2.c header; not a llama2.c checkpoint, "
             "or an incomplete download", path.string(), file.size(), kHeaderBytes);
    std::array<int32_t, 7> header{};
    std::memcpy(header.data(), file.data(), kHeaderBytes);
    uint32_t first_word = 0;
    std::memcpy(&first_word, file.data(), sizeof(first_word));
    if (first_word == kVersionedExportMagic)
        fail(kModule, "{}: this is a versioned llama2.c export (magic \"ak42\", version {}); only the legacy "
             "(version 0) format is supported: re-export with `python export.py --version 0`",
             path.string(), header[1]);

    const auto [dim, hidden_dim, n_layers, n_heads, n_kv_heads, signed_vocab_size, seq_len] = header;
    const std::array<std::pair<const char*, int32_t>, 6> positive_fields = {{{"dim", dim},
                                                                             {"hidden_dim", hidden_dim},
                                                                             {"n_layers", n_layers},
                                                                             {"n_heads", n_heads},
                                                                             {"n_kv_heads", n_kv_heads},
                                                                             {"seq_len", seq_len}}};
    for (const auto& [field, value] : positive_fields)
        if (value <= 0)
            fail(kModule, "{}: header field {} is {}, expected a positive number; not a llama2.c checkpoint?",
                 path.string(), field, value);
    if (signed_vocab_size == 0 || signed_vocab_size == INT32_MIN)
        fail(kModule, "{}: header field vocab_size is {}; not a llama2.c checkpoint?", path.string(),
             signed_vocab_size);
    if (dim % n_heads != 0 || (dim / n_heads) % 2 != 0)
        fail(kModule, "{}: header has dim {} and n_heads {}: the head size must be a whole, even number",
             path.string(), dim, n_heads);
    if (n_kv_heads > n_heads || n_heads % n_kv_heads != 0)
        fail(kModule, "{}: header has n_heads {} and n_kv_heads {}: n_heads must be a multiple of n_kv_heads",
             path.string(), n_heads, n_kv_heads);

    Llama2cConfig config;
    config.dim = dim;
    config.hidden_dim = hidden_dim;
    config.n_layers = n_layers;
    config.n_heads = n_heads;
    config.n_kv_heads = n_kv_heads;
    config.vocab_size = signed_vocab_size < 0 ? -static_cast<int64_t>(signed_vocab_size) : signed_vocab_size;
    config.seq_len = seq_len;
    config.shared_classifier = signed_vocab_size > 0;
    return config;
}

// Number of floats the header implies. Each field is below 2^31, so a product of three fits easily
// in 128 bits and an absurd header cannot overflow the count before it is compared to the file.
unsigned __int128 expected_float_count(const Llama2cConfig& c) {
    using u128 = unsigned __int128;
    const u128 D = c.dim, H = c.hidden_dim, L = c.n_layers, V = c.vocab_size, KVD = c.kv_dim();
    u128 count = V * D                 // token_embedding
                 + L * D               // rms_att
                 + L * D * D           // wq
                 + 2 * L * KVD * D     // wk, wv
                 + L * D * D           // wo
                 + L * D               // rms_ffn
                 + 3 * L * H * D       // w1, w2, w3
                 + D                   // rms_final
                 + static_cast<u128>(c.seq_len) * c.head_size();  // freq_cis_real and _imag, HS/2 each
    if (!c.shared_classifier) count += V * D;  // wcls
    return count;
}

}  // namespace

Llama2cCheckpoint load_llama2c(const fs::path& path) {
    MappedFile file(path, kModule);
    Llama2cCheckpoint checkpoint;
    checkpoint.config = parse_config(path, file);
    const Llama2cConfig& c = checkpoint.config;

    const unsigned __int128 expected_bytes = kHeaderBytes + 4 * expected_float_count(c);
    if (expected_bytes != file.size())
        fail(kModule, "{}: the header (dim {}, hidden_dim {}, n_layers {}, n_heads {}, n_kv_heads {}, vocab_size {}{}, "
             "seq_len {}) implies a file of {} bytes, but it has {} bytes. {}",
             path.string(), c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size,
             c.shared_classifier ? "" : " unshared", c.seq_len, expected_bytes, file.size(),
             expected_bytes > file.size() ? "Perhaps an incomplete download or corrupt file?"
                                          : "Trailing data or a corrupt header?");

    // The file is exactly as large as the header says, so every read below is in bounds.
    const float* cursor = reinterpret_cast<const float*>(file.data() + kHeaderBytes);
    auto take = [&cursor](int64_t count) {
        const float* start = cursor;
        cursor += count;
        return start;
    };
    auto copy = [](const float* source, Shape shape) {
        Tensor tensor(std::move(shape));
        std::memcpy(tensor.data(), source, tensor.numel() * sizeof(float));
        return tensor;
    };
    const int64_t D = c.dim, H = c.hidden_dim, L = c.n_layers, V = c.vocab_size, KVD = c.kv_dim(),
                  HS = c.head_size();
    auto layer = [](int64_t i, const char* suffix) { return fmt::format("model.layers.{}.{}", i, suffix); };
    auto& tensors = checkpoint.tensors;

    tensors["model.embed_tokens.weight"] = copy(take(V * D), {V, D});
    // Each of the per-layer arrays below is stored for all layers together: (L, ...).
    const float* rms_att = take(L * D);
    const float* wq = take(L * D * D);
    const float* wk = take(L * KVD * D);
    const float* wv = take(L * KVD * D);
    const float* wo = take(L * D * D);
    const float* rms_ffn = take(L * D);
    const float* w1 = take(L * H * D);
    const float* w2 = take(L * D * H);
    const float* w3 = take(L * H * D);
    for (int64_t i = 0; i < L; ++i) {
        tensors[layer(i, "input_layernorm.weight")] = copy(rms_att + i * D, {D});
        tensors[layer(i, "self_attn.q_proj.weight")] = permute_for_rotate_half(wq + i * D * D, c.n_heads, HS, D);
        tensors[layer(i, "self_attn.k_proj.weight")] = permute_for_rotate_half(wk + i * KVD * D, c.n_kv_heads, HS, D);
        tensors[layer(i, "self_attn.v_proj.weight")] = copy(wv + i * KVD * D, {KVD, D});
        tensors[layer(i, "self_attn.o_proj.weight")] = copy(wo + i * D * D, {D, D});
        tensors[layer(i, "post_attention_layernorm.weight")] = copy(rms_ffn + i * D, {D});
        tensors[layer(i, "mlp.gate_proj.weight")] = copy(w1 + i * H * D, {H, D});
        tensors[layer(i, "mlp.down_proj.weight")] = copy(w2 + i * D * H, {D, H});
        tensors[layer(i, "mlp.up_proj.weight")] = copy(w3 + i * H * D, {H, D});
    }
    tensors["model.norm.weight"] = copy(take(D), {D});
    take(c.seq_len * HS);  // freq_cis_real and freq_cis_imag, (seq_len, HS/2) each
    tensors["lm_head.weight"] = c.shared_classifier ? tensors["model.embed_tokens.weight"] : copy(take(V * D), {V, D});
    return checkpoint;
}

}  // namespace sinklab
