#include "io/corpus.h"
#include "io/corpus_bytes.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <fmt/format.h>

#include "core/error.h"

namespace sinklab {

namespace fs = std::filesystem;

std::vector<uint8_t> read_corpus_bytes(const fs::path& path, std::vector<std::string>* files_read) {
    std::error_code ec;
    if (!fs::exists(path, ec))
        fail("data", "{}: no such file or folder{}", path.string(),
             path.string().find("sotu") != std::string::npos ? " (run scripts/setup.sh to install the default corpus)" : "");
    std::vector<fs::path> files;
    if (fs::is_directory(path, ec)) {
        for (const auto& entry : fs::directory_iterator(path))
            if (entry.is_regular_file() && entry.path().extension() == ".txt") files.push_back(entry.path());
        std::sort(files.begin(), files.end());
        SINKLAB_CHECK(!files.empty(), "data", "{}: folder has no *.txt files", path.string());
    } else {
        files.push_back(path);
    }
    std::vector<uint8_t> all;
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        SINKLAB_CHECK(in.good(), "data", "{}: cannot open", f.string());
        std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        all.insert(all.end(), bytes.begin(), bytes.end());
        if (files_read) files_read->push_back(f.string());
    }
    SINKLAB_CHECK(!all.empty(), "data", "{}: no data (empty file{})", path.string(), files.size() > 1 ? "s" : "");
    return all;
}

size_t validation_bytes(size_t total_bytes, double val_fraction) {
    return static_cast<size_t>(static_cast<double>(total_bytes) * val_fraction);
}

ByteCorpus load_byte_corpus(const fs::path& path, double val_fraction) {
    ByteCorpus corpus;
    const std::vector<uint8_t> all = read_corpus_bytes(path, &corpus.files);
    const size_t n_val = validation_bytes(all.size(), val_fraction);
    SINKLAB_CHECK(n_val >= 2 && all.size() - n_val >= 2, "data",
                  "{}: {} bytes is too little data for a validation split of {}", path.string(), all.size(), val_fraction);
    corpus.train.assign(all.begin(), all.end() - static_cast<long>(n_val));
    corpus.val.assign(all.end() - static_cast<long>(n_val), all.end());
    return corpus;
}

fs::path default_corpus_path() {
    if (const char* env = std::getenv("SINKLAB_DATA"); env && *env) return env;
    return fs::path(SINKLAB_DEFAULT_DATA_DIR);
}

NamedText default_validation_text() {
    const fs::path corpus_path = default_corpus_path();
    const double fraction = kDefaultValFraction;
    const ByteCorpus corpus = load_byte_corpus(corpus_path, fraction);
    return {std::string(corpus.val.begin(), corpus.val.end()),
            fmt::format("the validation split (last {:g}) of {}", fraction, corpus_path.string())};
}

}  // namespace sinklab
