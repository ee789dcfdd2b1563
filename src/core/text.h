#pragma once
// Lists in flag values ("natural,random", "447,138", "frames,diffusion"), split once for every
// command that takes one.
#include <string>
#include <string_view>
#include <vector>

namespace sinklab {

// The items of `text` between separators, empty ones kept ("a,,b" gives three items, "" one empty
// item), so that the caller's check can name the empty item.
std::vector<std::string> split_list(std::string_view text, char separator = ',');

}  // namespace sinklab
