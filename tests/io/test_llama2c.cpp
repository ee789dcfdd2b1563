// The llama2.c checkpoint reader: the real stories260K model (its greedy story must come out of a
// Hugging Face-convention forward over the loaded weights), the tensor layout on a synthetic
// file whose every float is its own index, and broken files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "io/llama2c.h"
#include "io_test_support.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

fs::path stories260k() { return test::fixtures_dir() / "llama2c" / "stories260K.bin"; }

TEST(Llama2c, LoadsStories260K) {
    const Llama2cCheckpoint checkpoint = load_llama2c(stories260k());
    const Llama2cConfig& c = checkpoint.config;
    EXPECT_EQ(c.dim, 64);
    EXPECT_EQ(c.hidden_dim, 172);
    EXPECT_EQ(c.n_layers, 5);
    EXPECT_EQ(c.n_heads, 8);
    EXPECT_EQ(c.n_kv_heads, 4);
    EXPECT_EQ(c.vocab_size, 512);
    EXPECT_EQ(c.seq_len, 512);
    EXPECT_TRUE(c.shared_classifier);
    EXPECT_EQ(c.head_size(), 8);
    EXPECT_EQ(c.kv_dim(), 32);

    const auto& t = checkpoint.tensors;
    EXPECT_EQ(t.size(), 3u + 9u * 5u);
    EXPECT_EQ(t.at("model.embed_tokens.weight").shape(), (Shape{512, 64}));
    EXPECT_EQ(t.at("model.norm.weight").shape(), (Shape{64}));
    EXPECT_EQ(t.at("lm_head.weight").shape(), (Shape{512, 64}));
    for (int i = 0; i < 5; ++i) {
        const std::string prefix = "model.layers." + std::to_string(i) + ".";
        EXPECT_EQ(t.at(prefix + "input_layernorm.weight").shape(), (Shape{64}));
        EXPECT_EQ(t.at(prefix + "self_attn.q_proj.weight").shape(), (Shape{64, 64}));
        EXPECT_EQ(t.at(prefix + "self_attn.k_proj.weight").shape(), (Shape{32, 64}));
        EXPECT_EQ(t.at(prefix + "self_attn.v_proj.weight").shape(), (Shape{32, 64}));
        EXPECT_EQ(t.at(prefix + "self_attn.o_proj.weight").shape(), (Shape{64, 64}));
        EXPECT_EQ(t.at(prefix + "post_attention_layernorm.weight").shape(), (Shape{64}));
        EXPECT_EQ(t.at(prefix + "mlp.gate_proj.weight").shape(), (Shape{172, 64}));
        EXPECT_EQ(t.at(prefix + "mlp.up_proj.weight").shape(), (Shape{172, 64}));
        EXPECT_EQ(t.at(prefix + "mlp.down_proj.weight").shape(), (Shape{64, 172}));
    }
    const Tensor& embed = t.at("model.embed_tokens.weight");
    const Tensor& head = t.at("lm_head.weight");
    EXPECT_TRUE(std::equal(embed.data(), embed.data() + embed.numel(), head.data()));
}

// --- A Hugging Face LlamaForCausalLM forward (rotate_half RoPE, theta 10000, RMSNorm eps 1e-5),
// written out plainly and only for this test: its greedy output must be the story llama2.c tells.

using Matrix = std::vector<std::vector<double>>;  // (T, features)

Matrix linear(const Matrix& x, const Tensor& weight) {  // weight (out, in), like nn.Linear
    const int64_t out_features = weight.dim(0), in_features = weight.dim(1);
    Matrix y(x.size(), std::vector<double>(out_features));
    for (size_t t = 0; t < x.size(); ++t)
        for (int64_t o = 0; o < out_features; ++o) {
            double sum = 0;
            for (int64_t i = 0; i < in_features; ++i) sum += x[t][i] * weight[o * in_features + i];
            y[t][o] = sum;
        }
    return y;
}

Matrix rms_norm(const Matrix& x, const Tensor& weight) {
    Matrix y = x;
    for (auto& row : y) {
        double mean_square = 0;
        for (double v : row) mean_square += v * v / row.size();
        const double scale = 1.0 / std::sqrt(mean_square + 1e-5);
        for (size_t i = 0; i < row.size(); ++i) row[i] *= scale * weight[i];
    }
    return y;
}

// transformers' apply_rotary_pos_emb: x * cos + rotate_half(x) * sin, per head of size HS.
void rotate_half_rope(Matrix& x, int64_t HS) {
    const int64_t half = HS / 2;
    for (size_t pos = 0; pos < x.size(); ++pos)
        for (size_t head = 0; head < x[pos].size() / HS; ++head)
            for (int64_t j = 0; j < half; ++j) {
                const double angle = pos * std::pow(10000.0, -2.0 * j / HS);
                double& a = x[pos][head * HS + j];
                double& b = x[pos][head * HS + j + half];
                const double a0 = a, b0 = b;
                a = a0 * std::cos(angle) - b0 * std::sin(angle);
                b = b0 * std::cos(angle) + a0 * std::sin(angle);
            }
}

std::vector<double> next_token_logits(const Llama2cCheckpoint& checkpoint, const std::vector<int64_t>& tokens) {
    const Llama2cConfig& c = checkpoint.config;
    auto w = [&](const std::string& name) -> const Tensor& { return checkpoint.tensors.at(name); };
    const int64_t T = static_cast<int64_t>(tokens.size()), D = c.dim, HS = c.head_size();
    Matrix x(T, std::vector<double>(D));  // (T, D)
    for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < D; ++i) x[t][i] = w("model.embed_tokens.weight")[tokens[t] * D + i];
    for (int64_t l = 0; l < c.n_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        const Matrix h = rms_norm(x, w(p + "input_layernorm.weight"));
        Matrix q = linear(h, w(p + "self_attn.q_proj.weight"));  // (T, NH * HS)
        Matrix k = linear(h, w(p + "self_attn.k_proj.weight"));  // (T, NKV * HS)
        const Matrix v = linear(h, w(p + "self_attn.v_proj.weight"));
        rotate_half_rope(q, HS);
        rotate_half_rope(k, HS);
        Matrix attended(T, std::vector<double>(D));
        for (int64_t head = 0; head < c.n_heads; ++head) {
            const int64_t kv_head = head / (c.n_heads / c.n_kv_heads);
            for (int64_t i = 0; i < T; ++i) {
                std::vector<double> scores(i + 1);
                for (int64_t j = 0; j <= i; ++j) {
                    double dot = 0;
                    for (int64_t d = 0; d < HS; ++d) dot += q[i][head * HS + d] * k[j][kv_head * HS + d];
                    scores[j] = dot / std::sqrt(static_cast<double>(HS));
                }
                const double max_score = *std::max_element(scores.begin(), scores.end());
                double total = 0;
                for (double& s : scores) total += (s = std::exp(s - max_score));
                for (int64_t j = 0; j <= i; ++j)
                    for (int64_t d = 0; d < HS; ++d)
                        attended[i][head * HS + d] += scores[j] / total * v[j][kv_head * HS + d];
            }
        }
        const Matrix attention_out = linear(attended, w(p + "self_attn.o_proj.weight"));
        for (int64_t t = 0; t < T; ++t)
            for (int64_t i = 0; i < D; ++i) x[t][i] += attention_out[t][i];
        const Matrix h2 = rms_norm(x, w(p + "post_attention_layernorm.weight"));
        Matrix gate = linear(h2, w(p + "mlp.gate_proj.weight"));
        const Matrix up = linear(h2, w(p + "mlp.up_proj.weight"));
        for (int64_t t = 0; t < T; ++t)
            for (size_t i = 0; i < gate[t].size(); ++i)
                gate[t][i] = gate[t][i] / (1 + std::exp(-gate[t][i])) * up[t][i];  // SiLU(gate) * up
        const Matrix mlp_out = linear(gate, w(p + "mlp.down_proj.weight"));
        for (int64_t t = 0; t < T; ++t)
            for (int64_t i = 0; i < D; ++i) x[t][i] += mlp_out[t][i];
    }
    const Matrix last = rms_norm({x.back()}, w("model.norm.weight"));
    return linear(last, w("lm_head.weight"))[0];
}

TEST(Llama2c, GreedyStoryMatchesLlama2cWithHuggingFaceRope) {
    // From tests/io/llama2c_greedy_oracle.py (llama2.c's own interleaved RoPE on the raw weights):
    // "Once upon a time, there was a little girl named Lily. She loved to play outside in the
    // park. One day, she saw a big," with a smallest top-2 logit margin of 0.13.
    const std::vector<int64_t> expected = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317,
                                           426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282,
                                           295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352};
    const Llama2cCheckpoint checkpoint = load_llama2c(stories260k());
    std::vector<int64_t> tokens = {1};  // BOS
    for (size_t step = 0; step < expected.size(); ++step) {
        const std::vector<double> logits = next_token_logits(checkpoint, tokens);
        tokens.push_back(std::max_element(logits.begin(), logits.end()) - logits.begin());
        ASSERT_EQ(tokens.back(), expected[step]) << "step " << step;
    }
}

// --- Layout, on a synthetic checkpoint whose floats are their own index in the file.

struct SyntheticDims {
    int32_t dim = 8, hidden = 6, layers = 2, heads = 2, kv_heads = 1, vocab = 5, seq = 3;
};

std::string synthetic_checkpoint(const SyntheticDims& s, bool shared) {
    const int64_t HS = s.dim / s.heads, KVD = s.kv_heads * HS;
    const int64_t floats = s.vocab * s.dim * (shared ? 1 : 2) + s.layers * (2 * s.dim + 2 * s.dim * s.dim +
                                                                         2 * KVD * s.dim + 3 * s.hidden * s.dim) +
                           s.dim + s.seq * HS;
    const int32_t header[7] = {s.dim, s.hidden, s.layers, s.heads, s.kv_heads, shared ? s.vocab : -s.vocab, s.seq};
    std::string bytes(reinterpret_cast<const char*>(header), sizeof(header));
    for (int64_t i = 0; i < floats; ++i) {
        const auto value = static_cast<float>(i);
        bytes.append(reinterpret_cast<const char*>(&value), 4);
    }
    return bytes;
}

TEST(Llama2c, TensorsComeFromTheDocumentedOffsets) {
    ScratchDir scratch;
    const SyntheticDims s;
    const int64_t D = s.dim, H = s.hidden, L = s.layers, V = s.vocab, HS = D / s.heads, KVD = s.kv_heads * HS;
    for (bool shared : {true, false}) {
        SCOPED_TRACE(shared ? "shared" : "unshared");
        const fs::path path = scratch / (shared ? "shared.bin" : "unshared.bin");
        test::write_bytes(path, synthetic_checkpoint(s, shared));
        const Llama2cCheckpoint checkpoint = load_llama2c(path);
        EXPECT_EQ(checkpoint.config.shared_classifier, shared);
        EXPECT_EQ(checkpoint.config.vocab_size, V);
        auto at = [&](const std::string& name, int64_t i) {
            return static_cast<int64_t>(checkpoint.tensors.at(name)[i]);
        };

        // Offsets (in floats) of each array in the order llama2.c writes them.
        const int64_t rms_att = V * D, wq = rms_att + L * D, wk = wq + L * D * D, wv = wk + L * KVD * D,
                      wo = wv + L * KVD * D, rms_ffn = wo + L * D * D, w1 = rms_ffn + L * D, w2 = w1 + L * H * D,
                      w3 = w2 + L * D * H, rms_final = w3 + L * H * D, wcls = rms_final + D + s.seq * HS;
        EXPECT_EQ(at("model.embed_tokens.weight", 7), 7);
        EXPECT_EQ(at("model.norm.weight", 3), rms_final + 3);
        EXPECT_EQ(at("lm_head.weight", 2), shared ? 2 : wcls + 2);
        const int64_t l = 1;
        const std::string p = "model.layers.1.";
        EXPECT_EQ(at(p + "input_layernorm.weight", 2), rms_att + l * D + 2);
        EXPECT_EQ(at(p + "post_attention_layernorm.weight", 2), rms_ffn + l * D + 2);
        EXPECT_EQ(at(p + "self_attn.v_proj.weight", 5), wv + l * KVD * D + 5);
        EXPECT_EQ(at(p + "self_attn.o_proj.weight", 9), wo + l * D * D + 9);
        EXPECT_EQ(at(p + "mlp.gate_proj.weight", 11), w1 + l * H * D + 11);
        EXPECT_EQ(at(p + "mlp.down_proj.weight", 11), w2 + l * D * H + 11);
        EXPECT_EQ(at(p + "mlp.up_proj.weight", 11), w3 + l * H * D + 11);
        // q/k rows: row head*HS + parity*HS/2 + j holds llama2.c's row head*HS + 2j + parity.
        for (int64_t row = 0; row < D; ++row) {
            const int64_t head = row / HS, parity = (row % HS) / (HS / 2), j = row % (HS / 2);
            const int64_t source_row = head * HS + 2 * j + parity;
            EXPECT_EQ(at(p + "self_attn.q_proj.weight", row * D + 1), wq + l * D * D + source_row * D + 1) << row;
            if (row < KVD) {
                EXPECT_EQ(at(p + "self_attn.k_proj.weight", row * D + 1), wk + l * KVD * D + source_row * D + 1) << row;
            }
        }
    }
}

// --- Broken files.

void expect_bin_rejected(const ScratchDir& scratch, const std::string& name, const std::string& bytes,
                         const std::string& phrase) {
    SCOPED_TRACE(name);
    const fs::path path = scratch / name;
    test::write_bytes(path, bytes);
    test::expect_rejected(path, phrase, [&] { load_llama2c(path); });
}

std::string with_header_field(std::string bytes, int field, int32_t value) {
    std::memcpy(bytes.data() + 4 * field, &value, 4);
    return bytes;
}

TEST(Llama2cHostile, SizeMismatches) {
    ScratchDir scratch;
    const std::string real = test::read_bytes(stories260k());
    expect_bin_rejected(scratch, "truncated.bin", real.substr(0, real.size() - 4),
                        "implies a file of 1056540 bytes, but it has 1056536 bytes. Perhaps an incomplete download");
    expect_bin_rejected(scratch, "half.bin", real.substr(0, real.size() / 2), "Perhaps an incomplete download");
    expect_bin_rejected(scratch, "trailing.bin", real + "xxxx", "Trailing data or a corrupt header?");
    expect_bin_rejected(scratch, "empty.bin", "", "shorter than the 28-byte llama2.c header");
    expect_bin_rejected(scratch, "short.bin", real.substr(0, 27), "shorter than the 28-byte llama2.c header");
    // An unshared classifier needs V * D more floats than the file has.
    expect_bin_rejected(scratch, "unshared.bin", with_header_field(real, 5, -512), "vocab_size 512 unshared");
}

TEST(Llama2cHostile, AbsurdHeaders) {
    ScratchDir scratch;
    const std::string real = test::read_bytes(stories260k());
    expect_bin_rejected(scratch, "huge.bin", with_header_field(with_header_field(real, 0, 1 << 30), 3, 1 << 20),
                        "dim 1073741824");
    // Every product of the largest fields overflows 64 bits; the size check must still hold.
    const int32_t largest[7] = {1 << 30, INT32_MAX, INT32_MAX, 1 << 29, 1 << 29, -INT32_MAX, INT32_MAX};
    expect_bin_rejected(scratch, "largest.bin", std::string(reinterpret_cast<const char*>(largest), 28) + real,
                        "implies a file of");
    expect_bin_rejected(scratch, "negative_layers.bin", with_header_field(real, 2, -5),
                        "header field n_layers is -5, expected a positive number");
    expect_bin_rejected(scratch, "zero_vocab.bin", with_header_field(real, 5, 0), "vocab_size is 0");
    expect_bin_rejected(scratch, "min_vocab.bin", with_header_field(real, 5, INT32_MIN), "vocab_size is -2147483648");
    expect_bin_rejected(scratch, "odd_heads.bin", with_header_field(real, 3, 7),
                        "head size must be a whole, even number");
    expect_bin_rejected(scratch, "kv_heads.bin", with_header_field(real, 4, 3), "multiple of n_kv_heads");
    expect_bin_rejected(scratch, "versioned.bin", with_header_field(real, 0, 0x616b3432), "versioned llama2.c export");
    test::expect_rejected(scratch / "absent.bin", "no such file", [&] { load_llama2c(scratch / "absent.bin"); });
}

}  // namespace
}  // namespace sinklab
