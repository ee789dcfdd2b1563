#include "cli/tokenizer_choice.h"

#include <filesystem>

#include "model/checkpoint.h"
#include "model/hf_loader.h"

namespace sinklab::cli {

namespace fs = std::filesystem;

std::unique_ptr<Tokenizer> choose_tokenizer(const std::string& tokenizer_flag, const std::string& model_flag) {
    if (!tokenizer_flag.empty()) return load_tokenizer(tokenizer_flag);
    if (model_flag.empty()) return nullptr;
    const fs::path shipped = find_tokenizer(model_flag);
    if (!shipped.empty()) return load_tokenizer(shipped);
    if (fs::is_directory(model_flag)) {
        const nlohmann::json config = read_json_file(resolve_model_dir(model_flag) / "config.json", "config");
        if (config.value("model_type", std::string()) == "sinklab" && config.contains("sinklab"))
            return make_byte_tokenizer(config["sinklab"].value("vocab_size", 256) == 257);
    }
    return nullptr;
}

}  // namespace sinklab::cli
