#include "core/text.h"

namespace sinklab {

std::vector<std::string> split_list(std::string_view text, char separator) {
    std::vector<std::string> items;
    size_t start = 0;
    while (true) {
        const size_t end = text.find(separator, start);
        items.emplace_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
        if (end == std::string_view::npos) return items;
        start = end + 1;
    }
}

}  // namespace sinklab
