#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/files.h"
#include "helpers.h"
#include "report/csv.h"

namespace sinklab {
namespace {

TEST(Csv, QuotesOnlyWhereNeeded) {
    EXPECT_EQ(csv_field("plain"), "plain");
    EXPECT_EQ(csv_field(""), "");
    EXPECT_EQ(csv_field("0.25"), "0.25");
    EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
    EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
    EXPECT_EQ(csv_field("cr\r"), "\"cr\r\"");
    EXPECT_EQ(csv_field(" padded"), "\" padded\"");
    EXPECT_EQ(csv_field("trailing\t"), "\"trailing\t\"");
}

TEST(Csv, WritesHeaderAndRows) {
    Table table({"run", "layer", "alpha_1"});
    table.add_row({"softmax, T=64", "0", "0.91234567"});
    table.add_row({"kv \"bias\"", "11", "1e-05"});
    const std::string expected =
        "run,layer,alpha_1\n"
        "\"softmax, T=64\",0,0.91234567\n"
        "\"kv \"\"bias\"\"\",11,1e-05\n";
    EXPECT_EQ(to_csv(table), expected);
    const auto path = test::scratch_dir() / "sinks.csv";
    write_csv(path, table);
    EXPECT_EQ(read_text_file(path, "test"), expected);
}

TEST(Csv, RejectsRaggedRows) {
    Table table({"a", "b"});
    EXPECT_THROW(table.add_row({"1"}), Error);
    EXPECT_THROW(table.add_row({"1", "2", "3"}), Error);
    EXPECT_THROW(Table({}), Error);
}

TEST(Markdown, PadsAlignsAndFormats) {
    Table table({"run", "alpha_1", "steps"});
    table.add_row({"softmax", "0.912345678", "1000"});
    table.add_row({"a|b", "1.5e-06", ""});
    table.add_row({"two\nlines", "12", "20000"});
    const std::string expected =
        "| run       | alpha_1 | steps |\n"
        "| --------- | ------: | ----: |\n"
        "| softmax   |   0.912 |  1000 |\n"
        "| a\\|b      | 1.5e-06 |       |\n"
        "| two lines |      12 | 20000 |\n";
    EXPECT_EQ(to_markdown(table), expected);
}

TEST(Markdown, HeaderOnlyTable) { EXPECT_EQ(to_markdown(Table({"x"})), "| x   |\n| --- |\n"); }

TEST(Numbers, RecognisesNumbers) {
    for (const char* s : {"0", "-3", "0.25", "1e-05", "-2.5E+3", "nan", "inf"}) EXPECT_TRUE(is_number(s)) << s;
    for (const char* s : {"", "abc", "1.2.3", "12 ", " 12", "0x10", "3 heads"}) EXPECT_FALSE(is_number(s)) << s;
    Table table({"name", "value", "mixed"});
    table.add_row({"a", "1", "2"});
    table.add_row({"b", "", "n/a"});
    EXPECT_EQ(numeric_columns(table), (std::vector<bool>{false, true, false}));
    EXPECT_EQ(display_cell("0.123456", true), "0.123");
    EXPECT_EQ(display_cell("0.123456", false), "0.123456");
}

TEST(Numbers, FormatsForPeople) {
    EXPECT_EQ(format_number(4096), "4096");
    EXPECT_EQ(format_number(-3), "-3");
    EXPECT_EQ(format_number(-0.0), "0");
    EXPECT_EQ(format_number(0.5), "0.5");
    EXPECT_EQ(format_number(0.42351), "0.424");
    EXPECT_EQ(format_number(12.3456), "12.3");
    EXPECT_EQ(format_number(12345.6), "12346");
    EXPECT_EQ(format_number(0.000123456), "0.000123");
    EXPECT_EQ(format_number(1.23456e-5), "1.23e-05");
    EXPECT_EQ(format_number(2.5e20), "2.5e+20");
    EXPECT_EQ(format_number(0.123456, 2), "0.12");
    EXPECT_EQ(format_number(std::numeric_limits<double>::quiet_NaN()), "nan");
    EXPECT_EQ(format_number(-std::numeric_limits<double>::infinity()), "-inf");
    EXPECT_THROW(format_number(1.0, 0), Error);
}

}  // namespace
}  // namespace sinklab
