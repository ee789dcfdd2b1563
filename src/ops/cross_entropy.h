#pragma once
#include <cstdint>

namespace sinklab {

// Fused softmax + cross-entropy over V classes, one row per token. Targets < 0 are ignored (no loss,
// no gradient): used for prefix LM and padding.
// Returns the mean loss over counted rows; losses (N) receives per-row losses (0 for ignored rows).
// When dlogits is given it receives d(mean loss)/d(logits) * loss_scale (overwritten, not accumulated).
double cross_entropy_forward_backward(float* losses, float* dlogits, const float* logits, const int32_t* targets,
                                      int N, int V, float loss_scale = 1.0f);
// Number of rows with target >= 0.
int count_targets(const int32_t* targets, int N);

}  // namespace sinklab
