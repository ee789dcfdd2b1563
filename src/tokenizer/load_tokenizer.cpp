// load_tokenizer: from a model folder or a single file to the right format's loader.
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;

// A tiktoken rank file starts with "<base64> <rank>"; a SentencePiece model is a binary protobuf.
// Both are called tokenizer.model (Llama 3 ships its tiktoken ranks under that name).
bool looks_like_tiktoken(const fs::path& file) {
    require_input_file(file, "tokenizer");  // a FIFO would block the read below
    std::ifstream in(file, std::ios::binary);
    std::string first_line;
    std::getline(in, first_line);
    const size_t space = first_line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 >= first_line.size()) return false;
    for (size_t i = 0; i < first_line.size(); ++i) {
        const unsigned char c = first_line[i];
        const bool ok = i < space ? (std::isalnum(c) || c == '+' || c == '/' || c == '=')
                                  : i == space || std::isdigit(c) || (c == '\r' && i + 1 == first_line.size());
        if (!ok) return false;
    }
    return true;
}

std::unique_ptr<Tokenizer> load_model_file(const fs::path& file) {
    return looks_like_tiktoken(file) ? load_tiktoken(file) : load_sentencepiece(file);
}

// transformers' tokenizer_config.json: bos_token, eos_token and add_bos_token, which override what
// the tokenizer file itself says.
void apply_tokenizer_config(const fs::path& config_file, Tokenizer& tokenizer) {
    const std::string origin = config_file.string();
    const std::string text = read_text_file(config_file, "tokenizer");
    try {
        const nlohmann::json config = nlohmann::json::parse(text);
        auto resolve = [&](const char* key, std::optional<int32_t>& id) {
            const auto content = special_token_content(config.value(key, nlohmann::json()));
            if (!content) return;
            id = tokenizer.token_id(*content);
            SINKLAB_CHECK(id.has_value(), "tokenizer", "{}: {} \"{}\" is not a token of the tokenizer", origin, key,
                          *content);
        };
        resolve("bos_token", tokenizer.bos_id);
        resolve("eos_token", tokenizer.eos_id);
        if (config.contains("add_bos_token")) tokenizer.add_bos_by_default = config.at("add_bos_token").get<bool>();
        // Encoders' special tokens, where the format has not set them (a RoBERTa BPE tokenizer)
        for (auto [key, id] : {std::pair{"cls_token", &tokenizer.cls_id}, {"sep_token", &tokenizer.sep_id},
                               {"mask_token", &tokenizer.mask_id}, {"pad_token", &tokenizer.pad_id},
                               {"unk_token", &tokenizer.unk_id}})
            if (!*id) resolve(key, *id);
        if (tokenizer.framing == SequenceFraming::none && tokenizer.cls_id && tokenizer.sep_id) {
            const std::string type = config.value("tokenizer_class", "");
            tokenizer.framing = type.find("Roberta") != std::string::npos ? SequenceFraming::roberta
                                                                          : SequenceFraming::bert;
        }
    } catch (const nlohmann::json::exception& e) {
        fail("tokenizer", "{}: not a valid tokenizer_config.json: {}", origin, e.what());
    }
}

std::unique_ptr<Tokenizer> load_from_folder(const fs::path& folder) {
    // Any entry of that name counts, so that a broken one (a folder, a device, a link loop) is
    // refused by its loader with its name rather than passed over.
    auto has = [&](const char* name) {
        std::error_code ec;
        return fs::exists(fs::symlink_status(folder / name, ec));
    };
    std::unique_ptr<Tokenizer> tokenizer;
    const fs::path config = has("tokenizer_config.json") ? folder / "tokenizer_config.json" : fs::path();
    // A SentencePiece tokenizer.model is the original of the tokenizer.json transformers converts
    // from it (Llama 2, Mistral, Gemma), and sinklab reads only byte-level BPE from tokenizer.json;
    // likewise an encoder's vocab.txt (BERT's WordPiece) or sentencepiece.bpe.model (XLM-R).
    if (has("sentencepiece.bpe.model")) {
        tokenizer = load_xlm_roberta_sentencepiece(folder / "sentencepiece.bpe.model");
    } else if (has("vocab.txt") && !has("vocab.json") && !has("tokenizer.model")) {
        tokenizer = load_wordpiece(folder / "vocab.txt", config);
    } else if (has("tokenizer.model") && !looks_like_tiktoken(folder / "tokenizer.model")) {
        tokenizer = load_sentencepiece(folder / "tokenizer.model");
    } else if (has("tokenizer.json")) {
        tokenizer = load_hf_tokenizer_json(folder / "tokenizer.json");
    } else if (has("vocab.json") && has("merges.txt")) {
        tokenizer = load_gpt2_bpe(folder / "vocab.json", folder / "merges.txt");
    } else if (has("vocab.json")) {
        fail("tokenizer", "{}: vocab.json without merges.txt; a byte-level BPE needs both", folder.string());
    } else if (has("tokenizer.model")) {
        tokenizer = load_tiktoken(folder / "tokenizer.model");
    } else if (has("tokenizer.bin")) {
        tokenizer = load_llama2c_tokenizer(folder / "tokenizer.bin", 0);
    } else {
        fail("tokenizer",
             "{}: no tokenizer found (looked for tokenizer.json, vocab.json + merges.txt, tokenizer.model, "
             "tokenizer.bin, vocab.txt, sentencepiece.bpe.model)", folder.string());
    }
    if (!config.empty()) apply_tokenizer_config(config, *tokenizer);
    return tokenizer;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& path) {
    if (input_path_kind(path, "tokenizer") == PathKind::folder) return load_from_folder(path);
    const std::string extension = path.extension().string();
    if (path.filename() == "vocab.json") {
        const fs::path merges = path.parent_path() / "merges.txt";
        std::error_code ec;
        SINKLAB_CHECK(fs::exists(fs::symlink_status(merges, ec)), "tokenizer", "{}: no merges.txt beside it; a byte-level BPE needs both",
                      path.string());
        return load_gpt2_bpe(path, merges);
    }
    if (path.filename() == "vocab.txt") {
        const fs::path config = path.parent_path() / "tokenizer_config.json";
        return load_wordpiece(path, fs::is_regular_file(config) ? config : fs::path());
    }
    if (path.filename() == "sentencepiece.bpe.model") return load_xlm_roberta_sentencepiece(path);
    if (extension == ".json") return load_hf_tokenizer_json(path);
    if (extension == ".tiktoken") return load_tiktoken(path);
    if (extension == ".model") return load_model_file(path);
    if (extension == ".bin") return load_llama2c_tokenizer(path, 0);
    fail("tokenizer",
         "{}: unknown tokenizer file (expected tokenizer.json, vocab.json, vocab.txt, *.tiktoken, *.model or a "
         "llama2.c *.bin)",
         path.string());
}

}  // namespace sinklab
