#include "io/corpus.h"
#include "io/corpus_bytes.h"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "core/error.h"
#include "core/files.h"

namespace sinklab {

namespace fs = std::filesystem;

std::vector<fs::path> corpus_files(const fs::path& path) {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(path, ec)))
        fail("data", "{}: no such file or folder{}", path.string(),
             path.string().find("sotu") != std::string::npos ? " (run scripts/setup.sh to install the default corpus)" : "");
    if (input_path_kind(path, "data") == PathKind::file) return {path};
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(path, ec)) {
        // Only regular files (a symbolic link to one counts): a *.txt FIFO or device is passed over.
        if (entry.path().extension() == ".txt" && entry.is_regular_file(ec)) files.push_back(entry.path());
    }
    SINKLAB_CHECK(!ec, "data", "{}: cannot list the folder: {}", path.string(), ec.message());
    std::sort(files.begin(), files.end());
    SINKLAB_CHECK(!files.empty(), "data", "{}: folder has no *.txt files", path.string());
    return files;
}

std::vector<uint8_t> read_corpus_bytes(const fs::path& path, std::vector<std::string>* files_read) {
    const std::vector<fs::path> files = corpus_files(path);
    std::vector<uint8_t> all;
    for (const auto& f : files) {
        const std::string bytes = read_text_file(f, "data");
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
    std::vector<uint8_t> all = read_corpus_bytes(path, &corpus.files);
    const size_t n_val = validation_bytes(all.size(), val_fraction);
    SINKLAB_CHECK(n_val >= 2 && all.size() - n_val >= 2, "data",
                  "{}: {} bytes is too little data for a validation split of {}", path.string(), all.size(), val_fraction);
    corpus.val.assign(all.end() - static_cast<long>(n_val), all.end());
    all.resize(all.size() - n_val);
    corpus.train = std::move(all);  // not copied: the corpus is held once
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
