#include "core/threads.h"

#include <cblas.h>
#include <omp.h>

#include "core/error.h"

extern "C" void openblas_set_num_threads(int);

namespace sinklab {

void set_threads(int n) {
    SINKLAB_CHECK(n >= 0, "threads", "thread count must be >= 0 (0 = all cores), got {}", n);
    if (n == 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace sinklab
