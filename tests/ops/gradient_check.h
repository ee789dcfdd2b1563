#pragma once
// The op gradient harness (llama.cpp's test-backend-ops): a test builds a table of OpCase, each
// stating its own tolerances, and runs check_op on every entry. Used by tests/ops (the ops of
// src/ops) and tests/attention (the attention kernel), each linking only its own module.
//
// The kernels compute in float32, so each case is checked three ways:
//   1. forward: the float kernel against a plain-loop double-precision reference written in the test;
//   2. reference FD: the float kernel's backward against central differences of the double
//      reference (h = 1e-6, everything in double);
//   3. kernel FD: the float kernel's backward against central differences of the float kernel
//      itself (h = 1e-2 on inputs of order one, the loss accumulated in double).
// The scalar differentiated is L = sum(out * dout) with a random dout, so the analytic gradient is
// the kernel's backward applied to dout. Errors are per input tensor, relative to the tensor's
// largest entry: max_i |a_i - b_i| / max_i |b_i| (b the analytic gradient, or the reference
// output for check 1). Gradient buffers start non-zero, which checks that backward accumulates
// (+=) as the kernels promise.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"

namespace sinklab::test {

using Vec = std::vector<float>;
using VecD = std::vector<double>;

struct Tolerances {
    double forward = 1e-5;       // float kernel vs double reference
    double reference_fd = 1e-4;  // float backward vs central differences of the double reference
    double kernel_fd = 1e-3;     // float backward vs central differences of the float kernel
    double h_reference = 1e-6;   // FD step on the double reference
    double h_kernel = 1e-2;      // FD step on the float kernel
};

// One op under test. `inputs` are the differentiable float tensors (x, weight, bias, ...); the
// rest (dimensions, token ids, positions, masks) is captured by the closures.
struct OpCase {
    std::string name;
    std::vector<std::string> input_names;
    std::vector<Vec> inputs;
    std::function<VecD(const std::vector<Vec>&)> forward;  // the float kernel, outputs widened
    // Gradient of sum(out * dout) with respect to each input, from the kernel's backward.
    std::function<std::vector<Vec>(const std::vector<Vec>&, const Vec&)> backward;
    std::function<VecD(const std::vector<VecD>&)> reference;  // plain loops in double
    Tolerances tol;
};

inline Vec random_vec(Rng& rng, size_t n, double scale = 1.0) {
    Vec v(n);
    for (auto& x : v) x = static_cast<float>(rng.normal() * scale);
    return v;
}

// A seed from a case's name (FNV-1a), the same on every machine.
inline uint64_t fnv1a(const std::string& s) {
    uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
    return h;
}

inline VecD widen(const Vec& v) { return VecD(v.begin(), v.end()); }

// A gradient buffer pre-filled with a known pattern; `run` accumulates into it, and the returned
// difference is what the kernel added. A kernel that overwrote instead of accumulating fails.
inline Vec accumulated(size_t n, const std::function<void(float*)>& run) {
    Vec base(n), buf(n);
    for (size_t i = 0; i < n; ++i) base[i] = buf[i] = 0.25f * static_cast<float>(i % 7) - 0.75f;
    run(buf.data());
    for (size_t i = 0; i < n; ++i) buf[i] -= base[i];
    return buf;
}

inline double dot(const VecD& a, const Vec& b) {
    double s = 0.0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * static_cast<double>(b[i]);
    return s;
}

struct Mismatch {
    double error = 0.0;  // max |a - b| / max |b|
    size_t index = 0;    // where |a - b| is largest
};

inline Mismatch relative_error(const VecD& actual, const VecD& expected) {
    double worst = 0.0, scale = 0.0;
    Mismatch m;
    for (size_t i = 0; i < expected.size(); ++i) {
        scale = std::max(scale, std::abs(expected[i]));
        const double d = std::abs(actual[i] - expected[i]);
        if (d > worst) {
            worst = d;
            m.index = i;
        }
    }
    m.error = worst / std::max(scale, 1e-30);
    return m;
}

// Central differences of L = sum(reference(x) * dout) with respect to input `which`, in double.
inline VecD reference_fd(const OpCase& op, int which, const Vec& dout) {
    std::vector<VecD> x;
    for (const auto& in : op.inputs) x.push_back(widen(in));
    VecD grad(x[which].size());
    const double h = op.tol.h_reference;
    for (size_t k = 0; k < grad.size(); ++k) {
        const double saved = x[which][k];
        x[which][k] = saved + h;
        const double plus = dot(op.reference(x), dout);
        x[which][k] = saved - h;
        const double minus = dot(op.reference(x), dout);
        x[which][k] = saved;
        grad[k] = (plus - minus) / (2.0 * h);
    }
    return grad;
}

// Central differences of the float kernel; the steps actually taken (x +- h rounded to float)
// form the denominator.
inline VecD kernel_fd(const OpCase& op, int which, const Vec& dout) {
    std::vector<Vec> x = op.inputs;
    VecD grad(x[which].size());
    const float h = static_cast<float>(op.tol.h_kernel);
    for (size_t k = 0; k < grad.size(); ++k) {
        const float saved = x[which][k];
        x[which][k] = saved + h;
        const double step_up = static_cast<double>(x[which][k]) - saved;
        const double plus = dot(op.forward(x), dout);
        x[which][k] = saved - h;
        const double step_down = saved - static_cast<double>(x[which][k]);
        const double minus = dot(op.forward(x), dout);
        x[which][k] = saved;
        grad[k] = (plus - minus) / (step_up + step_down);
    }
    return grad;
}

// Runs the three checks on one case; failures are gtest failures naming the op, the input and the
// worst element.
inline void check_op(const OpCase& op) {
    ASSERT_EQ(op.inputs.size(), op.input_names.size()) << op.name;

    // 1. forward against the double reference
    std::vector<VecD> wide;
    for (const auto& in : op.inputs) wide.push_back(widen(in));
    const VecD out = op.forward(op.inputs);
    const VecD expected = op.reference(wide);
    ASSERT_EQ(out.size(), expected.size()) << op.name;
    const Mismatch fwd = relative_error(out, expected);
    EXPECT_LE(fwd.error, op.tol.forward) << op.name << " forward: output " << fwd.index << " is " << out[fwd.index]
                                         << ", reference " << expected[fwd.index];

    Rng rng(fnv1a(op.name));
    const Vec dout = random_vec(rng, out.size());
    const std::vector<Vec> grads = op.backward(op.inputs, dout);
    ASSERT_EQ(grads.size(), op.inputs.size()) << op.name;
    for (size_t i = 0; i < grads.size(); ++i) {
        const std::string what = op.name + " d" + op.input_names[i];
        ASSERT_EQ(grads[i].size(), op.inputs[i].size()) << what;
        const VecD analytic = widen(grads[i]);
        double largest = 0.0;
        for (double g : analytic) largest = std::max(largest, std::abs(g));
        ASSERT_GT(largest, 0.0) << what << " is all zero: the case tests nothing";

        // 2. against central differences of the double reference
        const VecD fd = reference_fd(op, static_cast<int>(i), dout);
        const Mismatch r = relative_error(fd, analytic);
        EXPECT_LE(r.error, op.tol.reference_fd) << what << "[" << r.index << "]: backward " << analytic[r.index]
                                                << ", reference finite difference " << fd[r.index];

        // 3. against central differences of the float kernel
        const VecD kfd = kernel_fd(op, static_cast<int>(i), dout);
        const Mismatch k = relative_error(kfd, analytic);
        EXPECT_LE(k.error, op.tol.kernel_fd) << what << "[" << k.index << "]: backward " << analytic[k.index]
                                             << ", kernel finite difference " << kfd[k.index];
    }
}

}  // namespace sinklab::test
