#pragma once
// The bytes of a text as every corpus reader reads them (io/corpus.h splits them for training), for
// readers that need all of them or their own ranges: `sinklab stream` reads a whole --data text and
// compares the byte ranges it streams with a model's training split.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace sinklab {

// The bytes of a text file, or of a folder's *.txt files concatenated in name order (the files
// read are appended to files_read when given). Throws with the path named: missing path, empty
// folder, empty files.
std::vector<uint8_t> read_corpus_bytes(const std::filesystem::path& path, std::vector<std::string>* files_read = nullptr);
// The validation split's size: the last floor(total * val_fraction) bytes.
size_t validation_bytes(size_t total_bytes, double val_fraction);

}  // namespace sinklab
