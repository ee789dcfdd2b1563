// The divergence rule (train/divergence.h): non-finite values, and spikes against the median of
// the last 50 healthy steps, with the history surviving a checkpoint round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "train/divergence.h"

namespace sinklab {
namespace {

TEST(Divergence, NonFiniteValuesDivergeFromTheFirstStep) {
    const DivergenceMonitor monitor(10.0);
    EXPECT_EQ(monitor.diagnose(std::nan(""), 1.0), "loss is nan");
    EXPECT_EQ(monitor.diagnose(std::numeric_limits<double>::infinity(), 1.0), "loss is inf");
    EXPECT_EQ(monitor.diagnose(5.0, std::numeric_limits<double>::infinity()), "gradient norm is inf");
    EXPECT_EQ(monitor.diagnose(5.0, 1.0), "");
    EXPECT_EQ(monitor.diagnose(1e30, 1e30), "") << "no history yet: only non-finite values count";
}

TEST(Divergence, ASpikeAgainstTheMedianOfTheRecentSteps) {
    DivergenceMonitor monitor(10.0);
    // The run at --lr 1e4: losses near 5.5, then 7.1e7 with a gradient norm of 6.9e22.
    monitor.record(5.55, 1.2);
    monitor.record(5.40, 0.9);
    EXPECT_EQ(monitor.diagnose(7.1e7, 6.9e22),
              "loss 7.1e+07 is more than spike-factor 10 times the median 5.475 of the last 2 steps");
    EXPECT_EQ(monitor.diagnose(5.0, 20.0),
              "gradient norm 20 is more than spike-factor 10 times the median 1.05 of the last 2 steps");
    // Just under the factor is healthy; the median ignores one outlier in the history.
    EXPECT_EQ(monitor.diagnose(54.0, 10.4), "");
    monitor.record(1000.0, 1.2);
    EXPECT_EQ(monitor.diagnose(54.0, 10.4), "") << "the medians: 5.55 of 5.55, 5.40, 1000; 1.2 of 1.2, 0.9, 1.2";
}

TEST(Divergence, TheHistoryIsTheLastFiftyStepsAndSurvivesACheckpoint) {
    DivergenceMonitor monitor(10.0);
    for (int i = 0; i < 50; ++i) monitor.record(100.0, 100.0);
    for (int i = 0; i < 26; ++i) monitor.record(1.0, 1.0);  // the old values are now a minority
    EXPECT_NE(monitor.diagnose(20.0, 1.0), "");
    DivergenceMonitor restored(10.0);
    restored.restore(monitor.to_json(), "state.json");
    EXPECT_EQ(restored.to_json(), monitor.to_json());
    EXPECT_EQ(restored.diagnose(20.0, 1.0), monitor.diagnose(20.0, 1.0));
    EXPECT_EQ(monitor.to_json()["losses"].size(), DivergenceMonitor::kSpikeWindow);
}

TEST(Divergence, FactorZeroLeavesOnlyNonFiniteValues) {
    DivergenceMonitor monitor(0.0);
    monitor.record(1.0, 1.0);
    EXPECT_EQ(monitor.diagnose(1e30, 1e30), "");
    EXPECT_EQ(monitor.diagnose(std::nan(""), 1.0), "loss is nan");
}

TEST(Divergence, AHistoryThatDoesNotFitIsRefusedByName) {
    DivergenceMonitor monitor(10.0);
    try {
        monitor.restore({{"losses", {1.0, 2.0}}, {"grad_norms", {1.0}}}, "state.json");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("state.json: the divergence history has 2 losses and 1 gradient norms"),
                  std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace sinklab
