// split_list: the items of a flag's comma-separated value, empty ones kept so that each command's
// check names them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/text.h"

namespace sinklab {
namespace {

using Items = std::vector<std::string>;

TEST(SplitList, GivesTheItemsBetweenSeparators) {
    EXPECT_EQ(split_list("natural,random,repeat"), (Items{"natural", "random", "repeat"}));
    EXPECT_EQ(split_list("447"), (Items{"447"}));
    EXPECT_EQ(split_list("a;b", ';'), (Items{"a", "b"}));
}

TEST(SplitList, KeepsEmptyItemsForTheCallerToRefuse) {
    EXPECT_EQ(split_list(""), (Items{""}));
    EXPECT_EQ(split_list("a,,b"), (Items{"a", "", "b"}));
    EXPECT_EQ(split_list(",a,"), (Items{"", "a", ""}));
}

}  // namespace
}  // namespace sinklab
