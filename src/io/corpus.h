#pragma once
// Text corpora, read as bytes: a text file or a folder of *.txt files (concatenated in name order),
// split into training bytes and the last `val_fraction` as validation. And the default corpus that
// scripts/setup.sh installs, which training, the probe, analyze and the report read when given no text.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace sinklab {

struct ByteCorpus {
    std::vector<uint8_t> train, val;
    std::vector<std::string> files;
    size_t total_bytes() const { return train.size() + val.size(); }
};

// The files of a corpus: `path` itself, or the *.txt files of the folder in name order. Throws with
// the path named: missing, a device or FIFO (a corpus is read from regular files only), an empty folder.
std::vector<std::filesystem::path> corpus_files(const std::filesystem::path& path);
// Throws with the path named: as corpus_files, and empty files.
ByteCorpus load_byte_corpus(const std::filesystem::path& path, double val_fraction);

// The validation fraction of training runs and of the default validation text.
inline constexpr float kDefaultValFraction = 0.05f;

// The default corpus, installed by scripts/setup.sh: $SINKLAB_DATA, else <source>/data/sotu.
std::filesystem::path default_corpus_path();

// The validation split (kDefaultValFraction) of the default corpus as text, and a line saying so:
// what `probe`, `analyze` and `report` read as natural input when no file is given.
struct NamedText {
    std::string text;
    std::string source;
};
NamedText default_validation_text();

}  // namespace sinklab
