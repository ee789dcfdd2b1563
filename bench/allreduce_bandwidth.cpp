// The all-reduce of data-parallel training on its own: the time of summing a float buffer over the
// ranks of an MPI job, from 4 KiB to 64 MiB, for the cost model of docs/scale-out.md. Run it under
// the launcher (bench/scale_out.sh): `mpirun -np 2 build/bench/allreduce_bandwidth [REPEATS]`.
// Rank 0 prints one JSON line per size: the median seconds of REPEATS all-reduces (the mean of the
// ranks' medians), and the bus
// bandwidth 2 (N - 1) / N x bytes / seconds (what each rank sends and receives in a ring all-reduce
// per second: the figure to set against a network's bandwidth).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <nlohmann/json.hpp>

#include "distributed/communicator.h"

using namespace sinklab;

int main(int argc, char** argv) {
    const int repeats = argc > 1 ? std::max(3, std::atoi(argv[1])) : 20;
    try {
        const Communicator& ranks = start_job();
        if (!ranks.distributed()) {
            std::fprintf(stderr, "allreduce_bandwidth: start it on several ranks (mpirun -np 2 ...)\n");
            end_job();
            return 1;
        }
        for (size_t bytes = size_t{4} << 10; bytes <= size_t{64} << 20; bytes *= 4) {
            std::vector<float> buffer(bytes / sizeof(float), 1.0f);
            std::vector<double> seconds;
            for (int r = 0; r < repeats + 2; ++r) {  // the first two warm the buffers and the connections
                ranks.barrier();
                const auto t0 = std::chrono::steady_clock::now();
                ranks.allreduce_sum(buffer.data(), buffer.size());
                const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                if (r >= 2) seconds.push_back(s);
                std::fill(buffer.begin(), buffer.end(), 1.0f);
            }
            // Every rank's time counts: rank 0 prints the mean of the ranks' medians.
            std::nth_element(seconds.begin(), seconds.begin() + seconds.size() / 2, seconds.end());
            double median = seconds[seconds.size() / 2];
            ranks.allreduce_sum(&median, 1);
            median /= ranks.size();
            if (ranks.is_root()) {
                const double n = ranks.size();
                nlohmann::json line = {{"bench", "allreduce"},
                                       {"ranks", ranks.size()},
                                       {"bytes", bytes},
                                       {"seconds", median},
                                       {"bus_gbytes_per_s", 2.0 * (n - 1) / n * static_cast<double>(bytes) / median / 1e9}};
                std::printf("%s\n", line.dump().c_str());
                std::fflush(stdout);
            }
        }
        end_job();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "allreduce_bandwidth: %s\n", e.what());
        return 1;
    }
    return 0;
}
