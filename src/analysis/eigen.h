#pragma once
// The one place the analyses include Eigen. GCC 12 reports false -Wmaybe-uninitialized warnings
// inside its own AVX-512 intrinsics (_mm512_undefined_pd; GCC bug 105593) for Eigen's kernels
// built with -march=native, hundreds per file. They are silenced for the text of these headers
// only: the pragma region covers the intrinsics' source lines, not the code that uses Eigen.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Dense>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
