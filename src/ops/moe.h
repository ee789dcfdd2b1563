#pragma once
// A mixture-of-experts MLP (gpt-oss; openai/gpt-oss gpt_oss/torch/model.py `MLPBlock`, Hugging Face
// `GptOssMLP`): a router, a linear layer with bias, scores the E experts of every token; the K
// largest logits choose the experts and the softmax over those K logits weights their outputs;
// each chosen expert is a gated MLP with biases, out_e = W_down,e act(W_up,e x + b_up,e) + b_down,e,
// its matrices held in MXFP4 (ops/mxfp4.h) and decoded tile by tile inside the products.
// Inference only.
#include <functional>

#include "ops/mxfp4.h"

namespace sinklab {

struct MoeDims {
    int N = 0;  // tokens
    int C = 0;  // width of the residual stream
    int F = 0;  // an expert's hidden size
    int E = 0;  // experts
    int K = 0;  // experts per token
    int up_width = 0;  // rows of W_up: 2F for gated activations (gate rows, then up rows), else F
};

struct MoeWeights {
    const float* router = nullptr;       // (E, C)
    const float* router_bias = nullptr;  // (E)
    const Mxfp4Matrices* up = nullptr;   // E matrices (up_width, C)
    const float* up_bias = nullptr;      // (E, up_width)
    const Mxfp4Matrices* down = nullptr; // E matrices (C, F)
    const float* down_bias = nullptr;    // (E, C)
};

struct MoeOutputs {
    float* out = nullptr;            // (N, C) the weighted sum of the chosen experts' outputs
    float* router_logits = nullptr;  // (N, E)
    float* routing = nullptr;        // (N, E) each expert's weight: the softmax over the chosen K, 0 elsewhere
};

// act (n, F) from the up projection pre (n, up_width): the MLP's activation.
using MoeActivation = std::function<void(float* act, const float* pre, int n)>;

// The K experts of each token are the K largest router logits, the larger first and, on equal
// logits, the lower index first.
void moe_forward(const MoeOutputs& out, const float* x, const MoeWeights& weights, const MoeDims& dims,
                 const MoeActivation& activation);

}  // namespace sinklab
