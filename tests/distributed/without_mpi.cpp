// The communicator as a build without MPI has it (sinklab_distributed_without_mpi, built from the
// same source without SINKLAB_WITH_MPI): one rank whose operations leave their inputs as they are,
// and a launcher that starts several ranks is one clear error instead of N runs each training alone.
#include <cstdlib>

#include <gtest/gtest.h>

#include "distributed/communicator.h"

namespace sinklab {
namespace {

TEST(DistributedWithoutMpi, OneRankLeavesItsInputsAsTheyAre) {
    EXPECT_FALSE(mpi_available());
    const Communicator one;
    EXPECT_EQ(one.rank(), 0);
    EXPECT_EQ(one.size(), 1);
    EXPECT_FALSE(one.distributed());
    EXPECT_EQ(one.share(10), std::make_pair(size_t{0}, size_t{10}));
    std::vector<float> values = {1.0f, -2.5f, 3.0f};
    one.allreduce_sum(values.data(), values.size());
    EXPECT_EQ(values, (std::vector<float>{1.0f, -2.5f, 3.0f}));
    EXPECT_EQ(one.broadcast(std::string("kept")), "kept");
    EXPECT_EQ(one.gather(values), values);
    EXPECT_TRUE(one.same_on_all_ranks(42));
    // agree passes a failure through unchanged on one rank
    EXPECT_THROW(one.agree([] { throw std::runtime_error("x"); }), std::runtime_error);
    EXPECT_EQ(one.agree([] { return 7; }), 7);

    BucketedAverage average(one, 16);
    average.begin(values.data(), values.size());
    average.ready(1, 3);
    average.ready(0, 1);
    average.finish();
    EXPECT_EQ(values, (std::vector<float>{1.0f, -2.5f, 3.0f}));
}

TEST(DistributedWithoutMpi, ALauncherOfSeveralRanksIsRefused) {
    // What mpirun tells each process it starts.
    ::setenv("OMPI_COMM_WORLD_RANK", "0", 1);
    ::setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
    const LaunchInfo launch = launch_info();
    EXPECT_TRUE(launch.launched);
    EXPECT_EQ(launch.size, 4);
    try {
        start_job();
        FAIL() << "a build without MPI started a job of 4 ranks";
    } catch (const AgreedError& e) {
        EXPECT_NE(std::string(e.what()).find("MPI is not available"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("4 processes"), std::string::npos) << e.what();
    }
    ::unsetenv("OMPI_COMM_WORLD_RANK");
    ::unsetenv("OMPI_COMM_WORLD_SIZE");
}

}  // namespace
}  // namespace sinklab
