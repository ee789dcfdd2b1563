#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "helpers.h"
#include "report/svg.h"

namespace sinklab {
namespace {

bool valid_entity(const std::string& s, size_t& i) {  // s[i] == '&'; advances past ';'
    const size_t end = s.find(';', i);
    if (end == std::string::npos) return false;
    const std::string name = s.substr(i + 1, end - i - 1);
    i = end;
    if (name == "amp" || name == "lt" || name == "gt" || name == "quot" || name == "apos") return true;
    if (name.size() > 1 && name[0] == '#') {
        const bool hex = name[1] == 'x';
        const std::string digits = name.substr(hex ? 2 : 1);
        return !digits.empty() && std::all_of(digits.begin(), digits.end(), [&](char c) {
            return hex ? std::isxdigit(static_cast<unsigned char>(c)) : std::isdigit(static_cast<unsigned char>(c));
        });
    }
    return false;
}

// A small XML well-formedness check: balanced tags, one root, quoted unique attributes, valid
// entities, no stray '<' or '&'. Returns "" when well-formed, else what is wrong.
std::string xml_problem(const std::string& s) {
    std::vector<std::string> open;
    int roots = 0;
    auto is_name = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':';
    };
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == '&') {
            if (!valid_entity(s, i)) return "bad entity near " + std::to_string(i);
            continue;
        }
        if (s[i] != '<') continue;
        if (s.compare(i, 4, "<!--") == 0 || s.compare(i, 2, "<?") == 0) {
            const size_t end = s.find(s[i + 1] == '!' ? "-->" : "?>", i);
            if (end == std::string::npos) return "unterminated comment";
            i = end + 1;
            continue;
        }
        const bool closing = s[i + 1] == '/';
        size_t j = i + (closing ? 2 : 1);
        const size_t name_start = j;
        while (j < s.size() && is_name(s[j])) j++;
        const std::string name = s.substr(name_start, j - name_start);
        if (name.empty()) return "stray '<' at " + std::to_string(i);
        std::set<std::string> attributes;
        while (true) {
            while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) j++;
            if (j >= s.size()) return "unterminated tag " + name;
            if (s[j] == '>' || (s[j] == '/' && s[j + 1] == '>')) break;
            if (closing) return "attributes in closing tag " + name;
            const size_t a = j;
            while (j < s.size() && is_name(s[j])) j++;
            const std::string attribute = s.substr(a, j - a);
            if (attribute.empty() || s[j] != '=' || (s[j + 1] != '"' && s[j + 1] != '\''))
                return "malformed attribute in " + name;
            if (!attributes.insert(attribute).second) return "duplicate attribute " + attribute + " in " + name;
            const char quote = s[j + 1];
            for (j += 2; j < s.size() && s[j] != quote; j++) {
                if (s[j] == '<') return "'<' in attribute " + attribute;
                if (s[j] == '&' && !valid_entity(s, j)) return "bad entity in attribute " + attribute;
            }
            j++;
        }
        const bool self_closing = s[j] == '/';
        if (closing) {
            if (open.empty() || open.back() != name) return "</" + name + "> closes nothing open";
            open.pop_back();
        } else if (!self_closing) {
            if (open.empty()) roots++;
            open.push_back(name);
        } else if (open.empty()) {
            roots++;
        }
        i = j + (self_closing ? 1 : 0);
    }
    if (!open.empty()) return "<" + open.back() + "> never closed";
    if (roots != 1) return std::to_string(roots) + " root elements";
    return "";
}

void expect_well_formed(const std::string& svg) {
    EXPECT_EQ(xml_problem(svg), "") << svg;
    if (std::system("command -v xmllint > /dev/null 2>&1") != 0) return;  // the small check above still ran
    const auto path = test::scratch_dir() / "chart.svg";
    std::ofstream(path) << svg;
    EXPECT_EQ(std::system(("xmllint --noout '" + path.string() + "'").c_str()), 0) << svg;
}

size_t count(const std::string& haystack, const std::string& needle) {
    size_t n = 0;
    for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) n++;
    return n;
}

TEST(XmlCheck, CatchesMalformedMarkup) {
    EXPECT_EQ(xml_problem("<a><b/></a>"), "");
    EXPECT_NE(xml_problem("<a><b></a>"), "");
    EXPECT_NE(xml_problem("<a>x < y</a>"), "");
    EXPECT_NE(xml_problem("<a>R&D</a>"), "");
    EXPECT_NE(xml_problem("<a t=\"1\" t=\"2\"/>"), "");
    EXPECT_NE(xml_problem("<a/><b/>"), "");
}

TEST(Svg, EscapesText) {
    EXPECT_EQ(xml_escape("a < b & \"c\" > 'd'"), "a &lt; b &amp; &quot;c&quot; &gt; &#39;d&#39;");
    EXPECT_EQ(xml_escape(std::string("bell\x07 tab\t")), "bell tab\t");
    EXPECT_EQ(xml_escape("α₁ ≥ 0.3"), "α₁ ≥ 0.3");
}

TEST(Svg, LineChartIsWellFormedWithEscapedLabels) {
    std::vector<Series> series(3);
    series[0] = {"run <A> & co", {0, 1, 2, 3, 4, 5}, {0.9, 0.7, 0.5, 0.52, 0.4, 0.3}};
    series[1] = {"run B", {0, 1, 2, 3, 4, 5}, {0.1, 0.2, NAN, 0.4, 0.45, 0.5}};
    series[2] = {"uniform baseline", {0, 5}, {0.25, 0.25}, true};
    LineChartOptions options;
    options.title = "Sink score α₁ per layer (T < 64 & eps = 0.3)";
    options.x_label = "layer";
    options.y_label = "α₁";
    const std::string svg = line_chart(series, options);
    expect_well_formed(svg);
    EXPECT_NE(svg.find("run &lt;A&gt; &amp; co"), std::string::npos);
    EXPECT_NE(svg.find("T &lt; 64 &amp; eps"), std::string::npos);
    EXPECT_EQ(svg.find("run <A>"), std::string::npos);
    EXPECT_EQ(count(svg, "stroke-dasharray"), 2u);  // the baseline and its legend sample
    // The NaN breaks run B into two pieces; markers on the 6 + 5 drawn points, none on the baseline.
    EXPECT_EQ(count(svg, "<circle"), 11u);
    EXPECT_NE(svg.find(">layer</text>"), std::string::npos);
    EXPECT_NE(svg.find(">0.8</text>"), std::string::npos);  // a y tick
    EXPECT_EQ(svg.find(">0.5</text>"), std::string::npos);  // integer x: no half-layer ticks
}

TEST(Svg, LogYChartTicksAtDecades) {
    Series s{"loss", {1, 10, 100, 1000}, {3.0, 0.3, 0.02, 0.0}};  // the 0 is skipped on log-y
    LineChartOptions options;
    options.title = "log";
    options.log_y = true;
    const std::string svg = line_chart({s}, options);
    expect_well_formed(svg);
    for (const char* tick : {">0.01</text>", ">0.1</text>", ">1</text>", ">10</text>"})
        EXPECT_NE(svg.find(tick), std::string::npos) << tick;
    EXPECT_EQ(count(svg, "<circle"), 3u);

    Series tiny{"p", {0, 1}, {1e-7, 1.0}};
    const std::string svg2 = line_chart({tiny}, options);
    expect_well_formed(svg2);
    EXPECT_NE(svg2.find("10⁻⁶"), std::string::npos);

    // Within about a decade, ticks fall back to 1, 2, 5 x 10^k.
    Series narrow{"loss", {0, 1, 2}, {10.5, 4.0, 2.5}};
    const std::string svg3 = line_chart({narrow}, options);
    expect_well_formed(svg3);
    for (const char* tick : {">2</text>", ">5</text>", ">10</text>", ">20</text>"})
        EXPECT_NE(svg3.find(tick), std::string::npos) << tick;
    EXPECT_EQ(svg3.find(">100</text>"), std::string::npos);
}

TEST(Svg, BarChartGroupsBarsPerCategory) {
    const std::vector<std::string> layers = {"0", "1", "2", "3", "4", "5", "6", "7"};
    std::vector<BarSeries> runs = {{"softmax", {0.9, 0.8, 0.85, 0.7, 0.6, 0.65, 0.5, 0.4}},
                                   {"softmax1 <off-by-one>", {0.1, 0.05, 0.02, 0.01, 0.0, 0.03, 0.02, 0.01}},
                                   {"sigmoid", {0.0, 0.0, 0.01, 0.0, 0.02, 0.0, 0.0, 0.01}}};
    BarChartOptions options;
    options.title = "alpha_1 per layer";
    options.x_label = "layer";
    options.y_label = "alpha_1";
    const std::string svg = bar_chart(layers, runs, options);
    expect_well_formed(svg);
    EXPECT_EQ(count(svg, "</title></rect>"), 24u);
    EXPECT_NE(svg.find("softmax1 &lt;off-by-one&gt;"), std::string::npos);
    EXPECT_EQ(count(svg, "width=\"14\" height=\"10\""), 3u);  // legend swatches
}

TEST(Svg, BarChartHandlesNegativeValues) {
    const std::string svg = bar_chart({"a", "b"}, {{"", {-2.0, 3.0}}}, {});
    expect_well_formed(svg);
    EXPECT_NE(svg.find(">-2</text>"), std::string::npos);
    EXPECT_EQ(count(svg, "width=\"14\" height=\"10\""), 0u);  // unnamed series: no legend
}

TEST(Svg, ColorBarIsWellFormed) {
    ColorBarOptions options;
    options.label = "attention weight (log)";
    options.scale = {ScaleKind::log, 1e-4, 1.0, 1e-4};
    const std::string svg = color_bar(options);
    expect_well_formed(svg);
    EXPECT_NE(svg.find("#440154"), std::string::npos);
    EXPECT_NE(svg.find(">0.001</text>"), std::string::npos);
    options.scale = {ScaleKind::linear, 0.0, 0.5};
    options.colormap = Colormap::magma;
    const std::string linear = color_bar(options);
    expect_well_formed(linear);
    EXPECT_NE(linear.find(">0.5</text>"), std::string::npos);
    EXPECT_NE(linear.find(">0.0</text>"), std::string::npos);
}

TEST(Svg, RejectsBadInput) {
    EXPECT_THROW(line_chart({}, {}), Error);
    EXPECT_THROW(line_chart({{"a", {1, 2}, {1}}}, {}), Error);
    LineChartOptions log;
    log.log_y = true;
    EXPECT_THROW(line_chart({{"a", {1, 2}, {0, -1}}}, log), Error);
    LineChartOptions inverted;
    inverted.y_min = 2.0;
    inverted.y_max = 1.0;
    EXPECT_THROW(line_chart({{"a", {1, 2}, {1, 2}}}, inverted), Error);
    EXPECT_THROW(bar_chart({"a"}, {{"r", {1, 2}}}, {}), Error);
    LineChartOptions tiny;
    tiny.width = 60;
    EXPECT_THROW(line_chart({{"a", {1, 2}, {1, 2}}}, tiny), Error);
}

}  // namespace
}  // namespace sinklab
