#pragma once
// Tables as data (a header and rows of strings), written as CSV (RFC 4180 quoting), as a Markdown
// table (sweep results.md), or as HTML (report/html.h). Fill numeric cells at full precision
// (fmt's shortest round-trip "{}"): CSV keeps cells verbatim for machines, while Markdown and HTML
// show the numeric columns through format_number for people.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace sinklab {

class Table {
public:
    explicit Table(std::vector<std::string> header);  // at least one column
    // Throws unless the row has one cell per column.
    void add_row(std::vector<std::string> row);

    const std::vector<std::string>& header() const { return header_; }
    const std::vector<std::vector<std::string>>& rows() const { return rows_; }

private:
    std::vector<std::string> header_;
    std::vector<std::vector<std::string>> rows_;
};

// A CSV field: quoted (with inner quotes doubled) when it holds a comma, a quote, a line break, or
// leading or trailing whitespace; as is otherwise.
std::string csv_field(std::string_view text);
// Header line then one line per row, each ended by "\n".
std::string to_csv(const Table& table);
void write_csv(const std::filesystem::path& path, const Table& table);

// Columns whose non-empty cells are all numbers (and that have at least one).
std::vector<bool> numeric_columns(const Table& table);
// The cell as people read it: format_number in a numeric column, as is otherwise.
std::string display_cell(const std::string& cell, bool numeric_column);

// A GitHub-flavoured Markdown table with padded columns; numeric columns are right-aligned and
// formatted (display_cell); '|' is escaped and line breaks become spaces.
std::string to_markdown(const Table& table);

// Whether the whole of `text` is a number ("0.25", "-3e-05", "12", "nan", "inf").
bool is_number(std::string_view text);
// A number for people: whole numbers in full ("4096", also for anything too large to need a
// fraction), others to `significant_digits` without trailing zeros ("0.424", "12.3", "0.5",
// "1.23e-05" below 1e-4). Three digits by default: the page's one number format, the same as its
// sentences ({:.3g}) and its tooltips (kNumberFormat), so a number reads alike wherever it appears.
std::string format_number(double value, int significant_digits = 3);

}  // namespace sinklab
