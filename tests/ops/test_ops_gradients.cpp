// Every op of src/ops against a double-precision reference and finite differences, through the
// harness of gradient_check.h (one table, each op stating its own tolerances). The attention
// kernel has its table in tests/attention/test_attention_gradients.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "gradient_check.h"
#include "ops/activations.h"
#include "ops/cross_entropy.h"
#include "ops/embedding.h"
#include "ops/matmul.h"
#include "ops/norms.h"
#include "ops/position_bias.h"
#include "ops/rope.h"

namespace sinklab {
namespace {

using test::accumulated;
using test::OpCase;
using test::random_vec;
using test::Vec;
using test::VecD;
using test::widen;

// ---------------------------------------------------------------------------------------------
// Double-precision references: the definitions, as plain loops.

VecD ref_matmul(const VecD& inp, const VecD& w, const VecD* b, int N, int C, int OC) {
    VecD out(static_cast<size_t>(N) * OC);
    for (int n = 0; n < N; ++n)
        for (int o = 0; o < OC; ++o) {
            double s = b ? (*b)[o] : 0.0;
            for (int c = 0; c < C; ++c) s += inp[n * C + c] * w[o * C + c];
            out[n * OC + o] = s;
        }
    return out;
}

VecD ref_layernorm(const VecD& x, const VecD* w, const VecD* b, int N, int C, double eps) {
    VecD out(x.size());
    for (int n = 0; n < N; ++n) {
        double mean = 0.0, var = 0.0;
        for (int c = 0; c < C; ++c) mean += x[n * C + c];
        mean /= C;
        for (int c = 0; c < C; ++c) var += (x[n * C + c] - mean) * (x[n * C + c] - mean);
        var /= C;
        for (int c = 0; c < C; ++c)
            out[n * C + c] = (x[n * C + c] - mean) / std::sqrt(var + eps) * (w ? (*w)[c] : 1.0) + (b ? (*b)[c] : 0.0);
    }
    return out;
}

VecD ref_rmsnorm(const VecD& x, const VecD* w, int N, int C, double eps, double offset) {
    VecD out(x.size());
    for (int n = 0; n < N; ++n) {
        double ms = 0.0;
        for (int c = 0; c < C; ++c) ms += x[n * C + c] * x[n * C + c];
        ms /= C;
        for (int c = 0; c < C; ++c) out[n * C + c] = x[n * C + c] / std::sqrt(ms + eps) * (w ? (*w)[c] + offset : 1.0);
    }
    return out;
}

double ref_gelu(double x) { return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))); }
double ref_gelu_erf(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double ref_relu(double x) { return std::max(x, 0.0); }
double ref_silu(double x) { return x / (1.0 + std::exp(-x)); }

// ---------------------------------------------------------------------------------------------
// The table.

std::vector<OpCase> op_cases() {
    std::vector<OpCase> cases;
    Rng rng(20240611);

    for (bool with_bias : {true, false}) {
        const int N = 5, C = 7, OC = 6;
        OpCase op;
        op.name = with_bias ? "matmul_bias" : "matmul";
        op.tol.kernel_fd = 1e-4;  // linear in each input: central differences exact up to rounding
        op.input_names = {"inp", "weight"};
        op.inputs = {random_vec(rng, N * C), random_vec(rng, OC * C)};
        if (with_bias) {
            op.input_names.push_back("bias");
            op.inputs.push_back(random_vec(rng, OC));
        }
        op.forward = [=](const std::vector<Vec>& in) {
            Vec out(N * OC, 7.0f);  // stale contents must not leak into out
            matmul_forward(out.data(), in[0].data(), in[1].data(), with_bias ? in[2].data() : nullptr, N, C, OC);
            return widen(out);
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            std::vector<Vec> g;
            g.push_back(accumulated(N * C, [&](float* d) {
                matmul_backward(d, nullptr, nullptr, dout.data(), in[0].data(), in[1].data(), N, C, OC);
            }));
            g.push_back(accumulated(OC * C, [&](float* d) {
                matmul_backward(nullptr, d, nullptr, dout.data(), in[0].data(), in[1].data(), N, C, OC);
            }));
            if (with_bias)
                g.push_back(accumulated(OC, [&](float* d) {
                    matmul_backward(nullptr, nullptr, d, dout.data(), in[0].data(), in[1].data(), N, C, OC);
                }));
            return g;
        };
        op.reference = [=](const std::vector<VecD>& in) {
            return ref_matmul(in[0], in[1], with_bias ? &in[2] : nullptr, N, C, OC);
        };
        cases.push_back(op);
    }

    for (bool affine : {true, false}) {
        const int N = 4, C = 8;
        const float eps = 1e-5f;
        OpCase op;
        op.name = affine ? "layernorm" : "layernorm_no_affine";
        op.input_names = {"inp"};
        op.inputs = {random_vec(rng, N * C)};
        if (affine) {
            Vec w = random_vec(rng, C, 0.3);
            for (auto& x : w) x += 1.0f;
            op.input_names.insert(op.input_names.end(), {"weight", "bias"});
            op.inputs.push_back(w);
            op.inputs.push_back(random_vec(rng, C, 0.3));
        }
        auto run = [=](const std::vector<Vec>& in, Vec& out, Vec& mean, Vec& rstd) {
            layernorm_forward(out.data(), mean.data(), rstd.data(), in[0].data(), affine ? in[1].data() : nullptr,
                              affine ? in[2].data() : nullptr, N, C, eps);
        };
        op.forward = [=](const std::vector<Vec>& in) {
            Vec out(N * C), mean(N), rstd(N);
            run(in, out, mean, rstd);
            return widen(out);
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            Vec out(N * C), mean(N), rstd(N);
            run(in, out, mean, rstd);
            const float* w = affine ? in[1].data() : nullptr;
            std::vector<Vec> g;
            g.push_back(accumulated(N * C, [&](float* d) {
                layernorm_backward(d, nullptr, nullptr, dout.data(), in[0].data(), w, mean.data(), rstd.data(), N, C);
            }));
            if (affine) {
                g.push_back(accumulated(C, [&](float* d) {
                    Vec dx(N * C);
                    layernorm_backward(dx.data(), d, nullptr, dout.data(), in[0].data(), w, mean.data(), rstd.data(), N, C);
                }));
                g.push_back(accumulated(C, [&](float* d) {
                    Vec dx(N * C);
                    layernorm_backward(dx.data(), nullptr, d, dout.data(), in[0].data(), w, mean.data(), rstd.data(), N, C);
                }));
            }
            return g;
        };
        op.reference = [=](const std::vector<VecD>& in) {
            return ref_layernorm(in[0], affine ? &in[1] : nullptr, affine ? &in[2] : nullptr, N, C, eps);
        };
        cases.push_back(op);
    }

    // RMSNorm: with a weight (offset 0 and Gemma's 1 + w), and without.
    for (int variant = 0; variant < 3; ++variant) {
        const int N = 4, C = 8;
        const float eps = 1e-6f;
        const bool has_weight = variant < 2;
        const float offset = variant == 1 ? 1.0f : 0.0f;
        OpCase op;
        op.name = variant == 0 ? "rmsnorm" : variant == 1 ? "rmsnorm_offset1" : "rmsnorm_no_weight";
        op.input_names = {"inp"};
        op.inputs = {random_vec(rng, N * C)};
        if (has_weight) {
            Vec w = random_vec(rng, C, 0.3);
            if (offset == 0.0f)
                for (auto& x : w) x += 1.0f;
            op.input_names.push_back("weight");
            op.inputs.push_back(w);
        }
        op.forward = [=](const std::vector<Vec>& in) {
            Vec out(N * C), rstd(N);
            rmsnorm_forward(out.data(), rstd.data(), in[0].data(), has_weight ? in[1].data() : nullptr, N, C, eps, offset);
            return widen(out);
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            Vec out(N * C), rstd(N);
            const float* w = has_weight ? in[1].data() : nullptr;
            rmsnorm_forward(out.data(), rstd.data(), in[0].data(), w, N, C, eps, offset);
            std::vector<Vec> g;
            g.push_back(accumulated(N * C, [&](float* d) {
                rmsnorm_backward(d, nullptr, dout.data(), in[0].data(), w, rstd.data(), N, C, offset);
            }));
            if (has_weight)
                g.push_back(accumulated(C, [&](float* d) {
                    Vec dx(N * C);
                    rmsnorm_backward(dx.data(), d, dout.data(), in[0].data(), w, rstd.data(), N, C, offset);
                }));
            return g;
        };
        op.reference = [=](const std::vector<VecD>& in) {
            return ref_rmsnorm(in[0], has_weight ? &in[1] : nullptr, N, C, eps, offset);
        };
        cases.push_back(op);
    }

    struct Activation {
        const char* name;
        void (*forward)(float*, const float*, long);
        void (*backward)(float*, const float*, const float*, long, GradWrite);
        double (*reference)(double);
        bool has_kink;  // inputs are kept clear of it, farther than the FD step
    };
    for (const Activation& a : {Activation{"gelu", gelu_forward, gelu_backward, ref_gelu, false},
                                Activation{"gelu_erf", gelu_erf_forward, gelu_erf_backward, ref_gelu_erf, false},
                                Activation{"relu", relu_forward, relu_backward, ref_relu, true}}) {
        const long n = 40;
        OpCase op;
        op.name = a.name;
        op.input_names = {"inp"};
        Vec x = random_vec(rng, n, 1.5);
        if (a.has_kink)
            for (auto& v : x) v = v >= 0 ? v + 0.1f : v - 0.1f;
        op.inputs = {x};
        op.forward = [=](const std::vector<Vec>& in) {
            Vec out(n);
            a.forward(out.data(), in[0].data(), n);
            return widen(out);
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            return std::vector<Vec>{accumulated(
                n, [&](float* d) { a.backward(d, in[0].data(), dout.data(), n, GradWrite::accumulate); })};
        };
        op.reference = [=](const std::vector<VecD>& in) {
            VecD out(n);
            for (long i = 0; i < n; ++i) out[i] = a.reference(in[0][i]);
            return out;
        };
        cases.push_back(op);
    }

    for (GateActivation act : {GateActivation::silu, GateActivation::gelu}) {
        const int N = 4, F = 6;
        OpCase op;
        op.name = act == GateActivation::silu ? "glu_silu" : "glu_gelu";
        op.input_names = {"gate_up"};
        op.inputs = {random_vec(rng, N * 2 * F, 1.5)};
        op.forward = [=](const std::vector<Vec>& in) {
            Vec out(N * F);
            glu_forward(out.data(), in[0].data(), N, F, act);
            return widen(out);
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            return std::vector<Vec>{accumulated(N * 2 * F, [&](float* d) {
                glu_backward(d, in[0].data(), dout.data(), N, F, act);
            })};
        };
        op.reference = [=](const std::vector<VecD>& in) {
            VecD out(N * F);
            for (int n = 0; n < N; ++n)
                for (int f = 0; f < F; ++f) {
                    const double gate = in[0][n * 2 * F + f], up = in[0][n * 2 * F + F + f];
                    out[n * F + f] = (act == GateActivation::silu ? ref_silu(gate) : ref_gelu(gate)) * up;
                }
            return out;
        };
        cases.push_back(op);
    }

    {
        // The residual add: out = a + b, backward is accumulate(da, dout) and accumulate(db, dout).
        const long n = 24;
        OpCase op;
        op.name = "add";
        op.tol.kernel_fd = 1e-4;  // linear in each input: central differences exact up to rounding
        op.input_names = {"a", "b"};
        op.inputs = {random_vec(rng, n), random_vec(rng, n)};
        op.forward = [=](const std::vector<Vec>& in) {
            Vec out(n);
            add_forward(out.data(), in[0].data(), in[1].data(), n);
            return widen(out);
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            auto one = [&] { return accumulated(n, [&](float* d) { accumulate(d, dout.data(), n); }); };
            return std::vector<Vec>{one(), one()};
        };
        op.reference = [=](const std::vector<VecD>& in) {
            VecD out(n);
            for (long i = 0; i < n; ++i) out[i] = in[0][i] + in[1][i];
            return out;
        };
        cases.push_back(op);
    }

    // Embeddings: repeated token ids (gradient rows accumulate), and Gemma's sqrt(C) scale.
    for (const float scale : {1.0f, 2.0f}) {
        const int N = 6, V = 5, C = 4;
        const std::vector<int32_t> tokens = {3, 1, 3, 0, 3, 4};
        OpCase op;
        op.name = scale == 1.0f ? "embedding" : "embedding_scaled";
        op.tol.kernel_fd = 1e-4;  // linear in each input: central differences exact up to rounding
        op.input_names = {"wte"};
        op.inputs = {random_vec(rng, V * C)};
        op.forward = [=](const std::vector<Vec>& in) {
            Vec out(N * C);
            embedding_forward(out.data(), tokens.data(), in[0].data(), N, C, scale);
            return widen(out);
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            return std::vector<Vec>{accumulated(
                V * C, [&](float* d) { embedding_backward(d, dout.data(), tokens.data(), N, C, scale); })};
        };
        op.reference = [=](const std::vector<VecD>& in) {
            VecD out(N * C);
            for (int i = 0; i < N; ++i)
                for (int c = 0; c < C; ++c) out[i * C + c] = in[0][tokens[i] * C + c] * scale;
            return out;
        };
        cases.push_back(op);
    }

    // Absolute positions added to rows: two sequences (position rows repeat) and scattered positions
    // (a cached decode step).
    for (int variant = 0; variant < 2; ++variant) {
        const int N = 6, P = 7, C = 4;
        const std::vector<int> positions = variant == 0 ? std::vector<int>{0, 1, 2, 0, 1, 2} : std::vector<int>{6, 2, 5, 0, 2, 3};
        OpCase op;
        op.name = variant == 0 ? "position_add" : "position_add_scattered";
        op.tol.kernel_fd = 1e-4;  // linear
        op.input_names = {"x", "table"};
        op.inputs = {random_vec(rng, N * C), random_vec(rng, P * C)};
        op.forward = [=](const std::vector<Vec>& in) {
            Vec out = in[0];
            position_add_forward(out.data(), in[1].data(), positions.data(), N, C);
            return widen(out);
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            // the rows pass through unchanged: dx = dout
            return std::vector<Vec>{dout, accumulated(P * C, [&](float* d) {
                                        position_add_backward(d, dout.data(), positions.data(), N, C);
                                    })};
        };
        op.reference = [=](const std::vector<VecD>& in) {
            VecD out = in[0];
            for (int i = 0; i < N; ++i)
                for (int c = 0; c < C; ++c) out[i * C + c] += in[1][positions[i] * C + c];
            return out;
        };
        cases.push_back(op);
    }

    // The sink token over row 0 of each of B sequences: its gradient sums those rows, and the values
    // it replaced get none.
    {
        const int B = 3, T = 4, C = 5;
        OpCase op;
        op.name = "sink_token";
        op.tol.kernel_fd = 1e-4;  // linear
        op.input_names = {"x", "sink"};
        Vec x = random_vec(rng, B * T * C);
        op.inputs = {x, random_vec(rng, C)};
        op.forward = [=](const std::vector<Vec>& in) {
            Vec out = in[0];
            sink_token_forward(out.data(), in[1].data(), B, T, C);
            return widen(out);
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            Vec dx = dout;  // in place: dL/d(out) in, dL/dx out
            Vec dsink = accumulated(C, [&](float* d) { sink_token_backward(d, dx.data(), B, T, C); });
            return std::vector<Vec>{dx, dsink};
        };
        op.reference = [=](const std::vector<VecD>& in) {
            VecD out = in[0];
            for (int b = 0; b < B; ++b)
                for (int c = 0; c < C; ++c) out[(b * T) * C + c] = in[1][c];
            return out;
        };
        cases.push_back(op);
    }

    // Soft-capping (Gemma 2's final logits), in place: inputs on both sides of the cap's knee.
    {
        const long n = 40;
        const float cap = 2.5f;
        OpCase op;
        op.name = "softcap";
        op.input_names = {"x"};
        op.inputs = {random_vec(rng, n, 3.0)};
        op.forward = [=](const std::vector<Vec>& in) {
            Vec y = in[0];
            softcap_forward(y.data(), n, cap);
            return widen(y);
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            Vec y = in[0], dx = dout;
            softcap_forward(y.data(), n, cap);
            softcap_backward(dx.data(), y.data(), n, cap);
            return std::vector<Vec>{dx};
        };
        op.reference = [=](const std::vector<VecD>& in) {
            VecD out(n);
            for (long i = 0; i < n; ++i) out[i] = cap * std::tanh(in[0][i] / cap);
            return out;
        };
        cases.push_back(op);
    }

    // The q/k norm inside qkv rows: the key heads (column past the query heads, GQA's narrower
    // width), normed per head (Qwen3) or over all of them (OLMo2), Gemma's 1 + w offset; the other
    // columns pass through.
    for (int variant = 0; variant < 3; ++variant) {
        const int N = 3, NH = 4, NKV = 2, HS = 4, stride = (NH + 2 * NKV) * HS;
        const long column = NH * HS;
        const int width = NKV * HS, norm_width = variant == 1 ? width : HS;
        const float eps = 1e-6f, offset = variant == 2 ? 1.0f : 0.0f;
        OpCase op;
        op.name = variant == 0 ? "qk_rmsnorm_per_head" : variant == 1 ? "qk_rmsnorm_full" : "qk_rmsnorm_offset1";
        op.input_names = {"qkv", "weight"};
        Vec w = random_vec(rng, norm_width, 0.3);
        if (offset == 0.0f)
            for (auto& v : w) v += 1.0f;
        op.inputs = {random_vec(rng, N * stride), w};
        auto run = [=](const std::vector<Vec>& in, Vec& qkv, Vec& rstd) {
            Vec rows(N * width);
            qkv = in[0];
            rstd.assign(N * (width / norm_width), 0.0f);
            qk_rmsnorm_forward(qkv.data(), rstd.data(), rows.data(), in[1].data(), N, stride, column, width, norm_width,
                               eps, offset);
        };
        op.forward = [=](const std::vector<Vec>& in) {
            Vec qkv, rstd;
            run(in, qkv, rstd);
            return widen(qkv);
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            Vec qkv, rstd;
            run(in, qkv, rstd);
            Vec dqkv = dout;  // in place: dL/d(out) in, dL/d(qkv) out
            Vec dweight = accumulated(norm_width, [&](float* d) {
                qk_rmsnorm_backward(dqkv.data(), d, in[0].data(), in[1].data(), rstd.data(), N, stride, column, width,
                                    norm_width, offset);
            });
            return std::vector<Vec>{dqkv, dweight};
        };
        op.reference = [=](const std::vector<VecD>& in) {
            VecD out = in[0];
            for (int t = 0; t < N; ++t)
                for (int g = 0; g < width / norm_width; ++g) {
                    const long at = t * stride + column + static_cast<long>(g) * norm_width;
                    double ms = 0.0;
                    for (int e = 0; e < norm_width; ++e) ms += in[0][at + e] * in[0][at + e];
                    ms /= norm_width;
                    for (int e = 0; e < norm_width; ++e)
                        out[at + e] = in[0][at + e] / std::sqrt(ms + eps) * (in[1][e] + offset);
                }
            return out;
        };
        cases.push_back(op);
    }

    // Cross-entropy: mean over counted rows (targets < 0 ignored); the gradient is scaled by
    // loss_scale, so the op's output here is loss_scale * mean loss.
    for (float loss_scale : {1.0f, 0.5f}) {
        const int N = 6, V = 5;
        const std::vector<int32_t> targets = {2, -1, 0, 4, -1, 1};
        OpCase op;
        op.name = loss_scale == 1.0f ? "cross_entropy" : "cross_entropy_scaled";
        op.input_names = {"logits"};
        op.inputs = {random_vec(rng, N * V, 2.0)};
        op.forward = [=](const std::vector<Vec>& in) {
            Vec losses(N);
            const double loss = cross_entropy_forward_backward(losses.data(), nullptr, in[0].data(), targets.data(), N, V);
            return VecD{loss * loss_scale};
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            Vec losses(N), dlogits(N * V, 9.0f);  // overwritten, not accumulated
            cross_entropy_forward_backward(losses.data(), dlogits.data(), in[0].data(), targets.data(), N, V, loss_scale);
            for (auto& g : dlogits) g *= dout[0];
            return std::vector<Vec>{dlogits};
        };
        op.reference = [=](const std::vector<VecD>& in) {
            double total = 0.0;
            int counted = 0;
            for (int n = 0; n < N; ++n) {
                if (targets[n] < 0) continue;
                double z = 0.0;
                for (int v = 0; v < V; ++v) z += std::exp(in[0][n * V + v]);
                total += std::log(z) - in[0][n * V + targets[n]];
                ++counted;
            }
            return VecD{total / counted * loss_scale};
        };
        cases.push_back(op);
    }

    // RoPE on the first n_heads heads of wider rows (as on the q part of a fused qkv row): full and
    // partial rotary dims, magnitude factor 1 and not, scattered positions.
    struct RopeVariant {
        const char* name;
        int rotary_dim;
        double theta, attention_factor;
    };
    for (const RopeVariant& rv : {RopeVariant{"rope", 8, 10000.0, 1.0}, RopeVariant{"rope_partial_scaled", 4, 100.0, 1.3}}) {
        const int n_tokens = 5, n_heads = 2, HS = 8, P = 9;
        const long row_stride = 3 * HS;  // one extra head that RoPE must leave alone
        const std::vector<int> positions = {0, 3, 1, 8, 4};
        const std::vector<double> inv_freq = RopeTable::default_inv_freq(rv.rotary_dim, rv.theta);
        const RopeTable table = RopeTable::build(inv_freq, P, rv.attention_factor);
        OpCase op;
        op.name = rv.name;
        op.tol.kernel_fd = 1e-4;  // linear in each input: central differences exact up to rounding
        op.input_names = {"x"};
        op.inputs = {random_vec(rng, n_tokens * row_stride)};
        op.forward = [=](const std::vector<Vec>& in) {
            Vec x = in[0];
            rope_forward(x.data(), positions.data(), n_tokens, n_heads, HS, row_stride, table);
            return widen(x);
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            Vec dx = dout;  // in place: dout in, dinp out
            rope_backward(dx.data(), positions.data(), n_tokens, n_heads, HS, row_stride, table);
            return std::vector<Vec>{dx};
        };
        op.reference = [=](const std::vector<VecD>& in) {
            VecD out = in[0];
            const int half = rv.rotary_dim / 2;
            for (int t = 0; t < n_tokens; ++t)
                for (int h = 0; h < n_heads; ++h)
                    for (int i = 0; i < half; ++i) {
                        // HF rotate_half: x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1]
                        const double freq = std::pow(rv.theta, -2.0 * i / rv.rotary_dim);
                        const double c = std::cos(positions[t] * freq) * rv.attention_factor;
                        const double s = std::sin(positions[t] * freq) * rv.attention_factor;
                        const long at = t * row_stride + h * HS + i;
                        out[at] = in[0][at] * c - in[0][at + half] * s;
                        out[at + half] = in[0][at + half] * c + in[0][at] * s;
                    }
            return out;
        };
        cases.push_back(op);
    }

    // T5 relative-position bias: (NH, T, T) gathered from a (buckets, NH) table by the bucket of
    // j - i. T = 40 reaches the log-spaced buckets (distances 16 and beyond).
    {
        const int NH = 2, T = 40;
        OpCase op;
        op.name = "relative_bias";
        op.tol.kernel_fd = 1e-4;  // linear in the table
        op.input_names = {"table"};
        op.inputs = {random_vec(rng, static_cast<size_t>(kRelativeBuckets) * NH)};
        op.forward = [=](const std::vector<Vec>& in) {
            Vec bias(static_cast<size_t>(NH) * T * T);
            relative_bias_forward(bias.data(), in[0].data(), NH, T);
            return widen(bias);
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            return std::vector<Vec>{accumulated(in[0].size(), [&](float* d) { relative_bias_backward(d, dout.data(), NH, T); })};
        };
        op.reference = [=](const std::vector<VecD>& in) {
            // Hugging Face T5Attention._relative_position_bucket, bidirectional=False, 32 buckets, max distance 128
            VecD bias(static_cast<size_t>(NH) * T * T);
            for (int i = 0; i < T; ++i)
                for (int j = 0; j < T; ++j) {
                    const int n = std::max(i - j, 0);
                    const int bucket =
                        n < 16 ? n : std::min(31, 16 + static_cast<int>(std::log(n / 16.0) / std::log(8.0) * 16));
                    for (int h = 0; h < NH; ++h) bias[(static_cast<size_t>(h) * T + i) * T + j] = in[0][bucket * NH + h];
                }
            return bias;
        };
        cases.push_back(op);
    }

    return cases;
}

const std::vector<OpCase>& all_cases() {
    static const std::vector<OpCase> cases = op_cases();
    return cases;
}

class OpGradient : public ::testing::TestWithParam<size_t> {};

TEST_P(OpGradient, MatchesReferenceAndFiniteDifferences) { test::check_op(all_cases()[GetParam()]); }

INSTANTIATE_TEST_SUITE_P(AllOps, OpGradient, ::testing::Range<size_t>(0, all_cases().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) { return all_cases()[info.param].name; });

// ---------------------------------------------------------------------------------------------
// Forward-only facts the table does not cover.

// ALiBi slopes: Press et al.'s get_slopes, 2^(-8/n)^(h+1) for a power of two, else the nearest
// lower power's slopes then every other slope of twice as many.
// GradWrite::overwrite gives what accumulating into zeros gives, whatever the buffer held (NaN
// here). The matmul shape spans several row blocks per thread and a ragged last block.
TEST(GradWrite, OverwriteIsAccumulateIntoZerosWhateverTheBufferHeld) {
    Rng rng(7);
    const auto check = [](const char* name, size_t n, const std::function<void(float*, GradWrite)>& run) {
        Vec added(n, 0.0f), written(n, std::numeric_limits<float>::quiet_NaN());
        run(added.data(), GradWrite::accumulate);
        run(written.data(), GradWrite::overwrite);
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(added[i], written[i]) << name << " at " << i;
    };
    const int N = 1001, C = 24, OC = 40;
    const Vec dout = random_vec(rng, N * OC), weight = random_vec(rng, OC * C);
    check("matmul", static_cast<size_t>(N) * C, [&](float* d, GradWrite w) {
        matmul_backward(d, nullptr, nullptr, dout.data(), nullptr, weight.data(), N, C, OC, w);
    });
    const long n = 333;
    const Vec x = random_vec(rng, n * 2, 1.5), g = random_vec(rng, n * 2);
    check("gelu", n, [&](float* d, GradWrite w) { gelu_backward(d, x.data(), g.data(), n, w); });
    check("gelu_erf", n, [&](float* d, GradWrite w) { gelu_erf_backward(d, x.data(), g.data(), n, w); });
    check("relu", n, [&](float* d, GradWrite w) { relu_backward(d, x.data(), g.data(), n, w); });
    for (GateActivation act : {GateActivation::silu, GateActivation::gelu})
        check("glu", n * 2, [&](float* d, GradWrite w) { glu_backward(d, x.data(), g.data(), 37, 9, act, w); });
}

// Every way of splitting a product's rows over threads and OpenBLAS calls gives the product and
// its gradients (a machine runs one plan; this runs all of them). 1001 rows split unevenly; at
// 200 -> 300 the small-kernel plan takes blocks of 16 rows and a ragged last block, at 24 -> 40
// blocks larger than a thread's share.
TEST(Matmul, EveryRowBlockingMatchesTheReference) {
    Rng rng(11);
    // N = 1: a decoding step's row, a matrix-vector product
    for (auto [N, C, OC] : {std::tuple{1001, 24, 40}, std::tuple{1001, 200, 300}, std::tuple{1, 200, 300}}) {
        const Vec inp = random_vec(rng, N * C), weight = random_vec(rng, OC * C), bias = random_vec(rng, OC);
        const Vec dout = random_vec(rng, N * OC);
        const VecD out_ref = ref_matmul(widen(inp), widen(weight), nullptr, N, C, OC);
        VecD dinp_ref(static_cast<size_t>(N) * C, 0.0), dw_ref(static_cast<size_t>(OC) * C, 0.0), db_ref(OC, 0.0);
        for (int n = 0; n < N; ++n)
            for (int o = 0; o < OC; ++o) {
                const double g = dout[n * OC + o];
                db_ref[o] += g;
                for (int c = 0; c < C; ++c) {
                    dinp_ref[n * C + c] += g * weight[o * C + c];
                    dw_ref[o * C + c] += g * inp[n * C + c];
                }
            }
        const auto expect_close = [](const Vec& got, const VecD& want, double tol, const char* what) {
            double worst = 0.0;
            for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
            EXPECT_LT(worst, tol) << what;
        };
        for (RowBlocking plan : {RowBlocking::automatic, RowBlocking::per_thread, RowBlocking::small_blocks}) {
            SCOPED_TRACE(::testing::Message() << "N " << N << " C " << C << " OC " << OC << " plan " << static_cast<int>(plan));
            set_row_blocking(plan);
            Vec out(static_cast<size_t>(N) * OC, 7.0f), dinp(static_cast<size_t>(N) * C, 7.0f);
            Vec dw(static_cast<size_t>(OC) * C, 0.0f), db(OC, 0.0f);
            matmul_forward(out.data(), inp.data(), weight.data(), bias.data(), N, C, OC);
            VecD out_b = out_ref;
            for (int n = 0; n < N; ++n)
                for (int o = 0; o < OC; ++o) out_b[n * OC + o] += bias[o];
            matmul_backward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), weight.data(), N, C, OC,
                            GradWrite::overwrite);
            // fp32 sums of up to 300 (forward, dinp) and 1001 (weight, bias) unit-variance products
            expect_close(out, out_b, 2e-4, "out");
            expect_close(dinp, dinp_ref, 2e-4, "dinp");
            expect_close(dw, dw_ref, 1e-3, "dweight");
            expect_close(db, db_ref, 1e-3, "dbias");
            // the weight gradient adds to what the buffer held
            Vec dw_added(dw.size(), 0.5f);
            matmul_backward(nullptr, dw_added.data(), nullptr, dout.data(), inp.data(), weight.data(), N, C, OC);
            VecD dw_plus = dw_ref;
            for (double& x : dw_plus) x += 0.5;
            expect_close(dw_added, dw_plus, 1e-3, "dweight added");
            // the residual joins in the product's rows, with and without the bias, given apart or in out
            const Vec residual = random_vec(rng, N * OC);
            VecD out_r = out_ref;
            for (size_t i = 0; i < out_r.size(); ++i) out_r[i] += residual[i];
            VecD out_rb = out_b;
            for (size_t i = 0; i < out_rb.size(); ++i) out_rb[i] += residual[i];
            Vec with_residual(out.size(), 7.0f);
            matmul_forward(with_residual.data(), inp.data(), weight.data(), nullptr, N, C, OC, residual.data());
            expect_close(with_residual, out_r, 2e-4, "out + residual");
            matmul_forward(with_residual.data(), inp.data(), weight.data(), bias.data(), N, C, OC, residual.data());
            expect_close(with_residual, out_rb, 2e-4, "out + bias + residual");
            Vec in_place = residual;
            matmul_forward(in_place.data(), inp.data(), weight.data(), bias.data(), N, C, OC, in_place.data());
            expect_close(in_place, out_rb, 2e-4, "out + bias + residual, in place");
        }
        set_row_blocking(RowBlocking::automatic);
    }
}

TEST(PositionBias, AlibiSlopesFollowThePaper) {
    const std::vector<float> eight = alibi_slopes(8);
    for (int h = 0; h < 8; ++h) EXPECT_FLOAT_EQ(eight[h], std::pow(0.5f, static_cast<float>(h + 1)));
    const std::vector<float> six = alibi_slopes(6);
    const std::vector<float> expected = {std::pow(2.0f, -2.0f), std::pow(2.0f, -4.0f), std::pow(2.0f, -6.0f),
                                         std::pow(2.0f, -8.0f), std::pow(2.0f, -1.0f), std::pow(2.0f, -3.0f)};
    for (int h = 0; h < 6; ++h) EXPECT_FLOAT_EQ(six[h], expected[h]) << "head " << h;
    std::vector<float> bias(2 * 3 * 3);
    alibi_bias(bias.data(), 2, 3);
    EXPECT_FLOAT_EQ(bias[(1 * 3 + 2) * 3 + 0], -2.0f * std::pow(2.0f, -8.0f));  // head 1, i = 2, j = 0
}

TEST(CrossEntropy, PerRowLossesAndIgnoredRows) {
    const int N = 4, V = 3;
    const Vec logits = {0.1f, 2.0f, -1.0f, 0.5f, 0.5f, 0.5f, 3.0f, -2.0f, 0.0f, 1.0f, 1.0f, 4.0f};
    const std::vector<int32_t> targets = {1, -1, 2, 0};
    Vec losses(N, 9.0f);
    const double mean = cross_entropy_forward_backward(losses.data(), nullptr, logits.data(), targets.data(), N, V);
    double total = 0.0;
    for (int n = 0; n < N; ++n) {
        double expected = 0.0;
        if (targets[n] >= 0) {
            double z = 0.0;
            for (int v = 0; v < V; ++v) z += std::exp(static_cast<double>(logits[n * V + v]));
            expected = std::log(z) - logits[n * V + targets[n]];
        }
        EXPECT_NEAR(losses[n], expected, 1e-6) << "row " << n;
        total += expected;
    }
    EXPECT_NEAR(mean, total / 3, 1e-6);
    EXPECT_EQ(count_targets(targets.data(), N), 3);

    // Nothing counted: zero loss, zero gradient.
    const std::vector<int32_t> none = {-1, -1, -1, -1};
    Vec dlogits(N * V, 1.0f);
    EXPECT_EQ(cross_entropy_forward_backward(losses.data(), dlogits.data(), logits.data(), none.data(), N, V), 0.0);
    for (float g : dlogits) EXPECT_EQ(g, 0.0f);
}

TEST(Rope, TableMatchesTheDefinition) {
    const int R = 6, P = 20;
    const double theta = 500.0, factor = 0.8;
    const std::vector<double> inv = RopeTable::default_inv_freq(R, theta);
    ASSERT_EQ(inv.size(), 3u);
    const RopeTable table = RopeTable::build(inv, P, factor);
    EXPECT_EQ(table.rotary_dim, R);
    EXPECT_EQ(table.positions, P);
    for (int p = 0; p < P; ++p)
        for (int i = 0; i < R / 2; ++i) {
            const double angle = p * std::pow(theta, -2.0 * i / R);
            EXPECT_NEAR(table.cos[p * 3 + i], std::cos(angle) * factor, 1e-5) << p << "," << i;
            EXPECT_NEAR(table.sin[p * 3 + i], std::sin(angle) * factor, 1e-5) << p << "," << i;
        }
}

TEST(Embedding, SinusoidalPositionsFollowVaswani) {
    const int T = 12, C = 10;
    Vec table(T * C);
    sinusoidal_positions(table.data(), T, C);
    for (int t = 0; t < T; ++t)
        for (int i = 0; i < C; i += 2) {
            const double freq = 1.0 / std::pow(10000.0, static_cast<double>(i) / C);
            EXPECT_NEAR(table[t * C + i], std::sin(t * freq), 1e-6);
            EXPECT_NEAR(table[t * C + i + 1], std::cos(t * freq), 1e-6);
        }
}

}  // namespace
}  // namespace sinklab
