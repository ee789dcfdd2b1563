#pragma once
// One thread pool for everything: OpenMP, which the OpenMP build of OpenBLAS shares.
namespace sinklab {
// Sets the number of threads for sinklab's loops and for BLAS; 0 means all cores.
void set_threads(int n);
int num_threads();
}  // namespace sinklab
