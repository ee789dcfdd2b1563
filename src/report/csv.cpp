#include "report/csv.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/error.h"
#include "core/files.h"

namespace sinklab {

namespace {

size_t code_points(std::string_view text) {
    return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

std::string markdown_cell(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '|')
            out += "\\|";
        else if (c == '\n' || c == '\r')
            out += ' ';
        else
            out += c;
    }
    return out;
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

}  // namespace

Table::Table(std::vector<std::string> header) : header_(std::move(header)) {
    SINKLAB_CHECK(!header_.empty(), "report", "a table needs at least one column");
}

void Table::add_row(std::vector<std::string> row) {
    SINKLAB_CHECK(row.size() == header_.size(), "report", "table row {} has {} cells, but the header ({}, ...) has {}",
                  rows_.size() + 1, row.size(), header_[0], header_.size());
    rows_.push_back(std::move(row));
}

std::string csv_field(std::string_view text) {
    const bool quote = text.find_first_of(",\"\r\n") != std::string_view::npos ||
                       (!text.empty() && (is_space(text.front()) || is_space(text.back())));
    if (!quote) return std::string(text);
    std::string out = "\"";
    for (char c : text) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
    return out;
}

std::string to_csv(const Table& table) {
    std::string out;
    auto line = [&out](const std::vector<std::string>& cells) {
        for (size_t i = 0; i < cells.size(); i++) {
            if (i > 0) out += ',';
            out += csv_field(cells[i]);
        }
        out += '\n';
    };
    line(table.header());
    for (const auto& row : table.rows()) line(row);
    return out;
}

void write_csv(const std::filesystem::path& path, const Table& table) { write_file_atomic(path, to_csv(table)); }

std::string to_markdown(const Table& table) {
    const size_t n = table.header().size();
    std::vector<std::vector<std::string>> cells;
    cells.reserve(table.rows().size() + 1);
    cells.push_back(table.header());
    for (const auto& row : table.rows()) cells.push_back(row);
    const std::vector<bool> numeric = numeric_columns(table);
    std::vector<size_t> width(n, 3);
    for (size_t r = 0; r < cells.size(); r++)
        for (size_t c = 0; c < n; c++) {
            cells[r][c] = markdown_cell(r == 0 ? cells[r][c] : display_cell(cells[r][c], numeric[c]));
            width[c] = std::max(width[c], code_points(cells[r][c]));
        }

    std::string out;
    auto line = [&](const std::vector<std::string>& row) {
        out += '|';
        for (size_t c = 0; c < n; c++) {
            const std::string pad(width[c] - code_points(row[c]), ' ');
            out += ' ';
            out += numeric[c] ? pad + row[c] : row[c] + pad;
            out += " |";
        }
        out += '\n';
    };
    line(cells[0]);
    out += '|';
    for (size_t c = 0; c < n; c++) out += ' ' + std::string(width[c] - 1, '-') + (numeric[c] ? ":" : "-") + " |";
    out += '\n';
    for (size_t r = 1; r < cells.size(); r++) line(cells[r]);
    return out;
}

std::vector<bool> numeric_columns(const Table& table) {
    std::vector<bool> numeric(table.header().size());
    for (size_t c = 0; c < numeric.size(); c++) {
        bool any = false, all = true;
        for (const auto& row : table.rows()) {
            if (row[c].empty()) continue;
            any = true;
            all = all && is_number(row[c]);
        }
        numeric[c] = any && all;
    }
    return numeric;
}

std::string display_cell(const std::string& cell, bool numeric_column) {
    if (!numeric_column || cell.empty()) return cell;
    double value = 0;
    std::from_chars(cell.data(), cell.data() + cell.size(), value);
    return format_number(value);
}

bool is_number(std::string_view text) {
    if (text.empty()) return false;
    double value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    return ec == std::errc() && end == text.data() + text.size();
}

std::string format_number(double value, int significant_digits) {
    SINKLAB_CHECK(significant_digits >= 1 && significant_digits <= 17, "report",
                  "format_number with {} significant digits: expected 1 to 17", significant_digits);
    if (!std::isfinite(value)) return fmt::format("{}", value);
    const double magnitude = std::abs(value);
    if (magnitude < 1e15 && (value == std::round(value) || magnitude >= std::pow(10.0, significant_digits)))
        return fmt::format("{:.0f}", value + 0.0);
    return fmt::format("{:.{}g}", value, significant_digits);
}

}  // namespace sinklab
