// The blockwise kernel's taps are the statistics metrics reads from materialised weights: for every
// design and axis at T = 512 and T = 389 (tests/attention/design_cases.h, long_design_cases), the
// column sum of every key and the entropy of every query row, read through the design's sink-metric
// proxy, equal attention_weight_stats of the materialised kernel's weights within 1e-5 (relative to
// the largest entry where that exceeds 1), and so do the slot weights. Column taps of the first keys
// alone (a probe's positions) are those keys' sums.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../attention/design_cases.h"
#include "metrics/attention_stats.h"
#include "metrics/proxy.h"

namespace sinklab {
namespace {

using test::DesignCase;
using test::Vec;

void expect_close(const std::string& what, const Vec& actual, const Vec& expected) {
    test::expect_close_tensor(what, actual, expected, 1e-5);
}

const std::vector<DesignCase>& cases() {
    static const std::vector<DesignCase> all = test::long_design_cases();
    return all;
}

class BlockwiseTaps : public ::testing::TestWithParam<size_t> {};

TEST_P(BlockwiseTaps, EqualTheMaterialisedWeightsStatistics) {
    const DesignCase& c = cases()[GetParam()];
    const ProxyKind proxy = sink_metric_proxy(c.spec);
    const test::KernelRun ref = test::run_forward(c, c.inputs);
    const test::KernelRun got = test::run_forward(c, c.inputs, test::KernelChoice{true, {}, proxy});
    const long rows = static_cast<long>(c.dims.B) * c.dims.NH * c.dims.T;
    Vec columns(rows), entropy(rows);
    attention_weight_stats(columns.data(), entropy.data(), ref.weights.data(), c.dims.B, c.dims.NH, c.dims.T, proxy);
    expect_close("column sums", got.column_sums, columns);
    expect_close("row entropy", got.row_entropy, entropy);
    if (c.spec.has_slot()) expect_close("slot weights", got.slot_weights, ref.slot_weights);
}

INSTANTIATE_TEST_SUITE_P(EveryDesignAndAxis, BlockwiseTaps, ::testing::Range<size_t>(0, cases().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) { return cases()[info.param].name; });

TEST(BlockwiseTapsColumns, TheFirstKeysAlone) {
    const DesignCase c = test::make_design_case("sigmoid", test::Layout{"taps", 2, 200, 2, 1, 8, 0, 0});
    const ProxyKind proxy = sink_metric_proxy(c.spec);
    const test::KernelRun all = test::run_forward(c, c.inputs, test::KernelChoice{true, {}, proxy});
    const int columns = 7;
    Vec first(static_cast<size_t>(c.dims.B) * c.dims.NH * columns, NAN), out(c.out_size());
    blockwise_attention_forward(out.data(), {}, AttentionTaps{nullptr, first.data(), columns, nullptr, proxy},
                                test::bind_inputs(c, c.inputs), test::bind_params(c, c.inputs), c.dims, c.spec, c.mask);
    for (int bh = 0; bh < c.dims.B * c.dims.NH; ++bh)
        for (int j = 0; j < columns; ++j) EXPECT_EQ(first[bh * columns + j], all.column_sums[bh * c.dims.T + j]);
    EXPECT_EQ(out, all.out);
}

}  // namespace
}  // namespace sinklab
