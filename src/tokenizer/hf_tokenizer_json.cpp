// Hugging Face tokenizer.json with a byte-level BPE model (GPT-2, Llama 3, Qwen2, Mistral's Tekken,
// ...): model.vocab/merges/ignore_merges, added_tokens, normalizer, pre_tokenizer, post_processor.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/token_id.h"

namespace sinklab {
namespace {

using nlohmann::json;

bool mentions_byte_level(const json& component) {
    if (component.is_object()) {
        if (component.value("type", "") == "ByteLevel") return true;
        for (const auto& [key, value] : component.items()) {
            if (mentions_byte_level(value)) return true;
        }
    } else if (component.is_array()) {
        for (const json& value : component) {
            if (mentions_byte_level(value)) return true;
        }
    }
    return false;
}

SplitBehavior parse_behavior(const std::string& name, const std::string& origin) {
    if (name == "Removed") return SplitBehavior::removed;
    if (name == "Isolated") return SplitBehavior::isolated;
    if (name == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
    if (name == "MergedWithNext") return SplitBehavior::merged_with_next;
    if (name == "Contiguous") return SplitBehavior::contiguous;
    fail("tokenizer", "{}: unknown Split behavior \"{}\"", origin, name);
}

void add_pre_tokenizer(const json& spec, const std::string& origin, PreTokenizer& pre_tokenizer) {
    if (spec.is_null()) return;
    const std::string type = spec.at("type").get<std::string>();
    if (type == "Sequence") {
        for (const json& inner : spec.at("pretokenizers")) add_pre_tokenizer(inner, origin, pre_tokenizer);
    } else if (type == "ByteLevel") {
        pre_tokenizer.add_byte_level(spec.value("add_prefix_space", true), spec.value("use_regex", true));
    } else if (type == "Split") {
        const json& pattern = spec.at("pattern");
        const bool literal = pattern.contains("String");
        const std::string text = pattern.at(literal ? "String" : "Regex").get<std::string>();
        pre_tokenizer.add_split(text, literal, parse_behavior(spec.at("behavior").get<std::string>(), origin),
                                spec.value("invert", false), origin + " pre_tokenizer Split");
    } else if (type == "Digits") {
        // Rust's char::is_numeric, which Digits uses, is \p{N}.
        const bool individual = spec.value("individual_digits", false);
        pre_tokenizer.add_split(individual ? R"(\p{N})" : R"(\p{N}+)", false, SplitBehavior::isolated, false,
                                origin + " pre_tokenizer Digits");
    } else {
        fail("tokenizer", "{}: pre_tokenizer \"{}\" is not supported with byte-level BPE "
             "(sinklab reads ByteLevel, Split, Digits and Sequence)", origin, type);
    }
}

std::vector<AddedToken> parse_added_tokens(const json& list, const std::string& origin) {
    std::vector<AddedToken> tokens;
    for (const json& entry : list) {
        const std::string content = entry.at("content").get<std::string>();
        tokens.push_back({.content = content,
                          .id = token_id_from_json(entry.at("id"), origin, fmt::format("added token \"{}\"", content)),
                          .special = entry.value("special", false),
                          .lstrip = entry.value("lstrip", false),
                          .rstrip = entry.value("rstrip", false),
                          .single_word = entry.value("single_word", false),
                          .normalized = entry.value("normalized", false)});
    }
    return tokens;
}

// The BOS that a TemplateProcessing post-processor puts before the text ("single": [BOS, $A]),
// found directly or inside a Sequence of processors.
std::optional<int32_t> template_bos(const json& processor, const std::string& origin) {
    if (!processor.is_object()) return std::nullopt;
    const std::string type = processor.value("type", "");
    if (type == "Sequence") {
        for (const json& inner : processor.at("processors")) {
            if (auto bos = template_bos(inner, origin)) return bos;
        }
        return std::nullopt;
    }
    if (type != "TemplateProcessing") return std::nullopt;
    const json& single = processor.at("single");
    if (single.empty() || !single[0].contains("SpecialToken")) return std::nullopt;
    const std::string name = single[0]["SpecialToken"].at("id").get<std::string>();
    return token_id_from_json(processor.at("special_tokens").at(name).at("ids").at(0), origin,
                              fmt::format("post_processor special token \"{}\"", name));
}

std::unique_ptr<Tokenizer> build_from_json(const json& root, const std::string& origin) {
    const json& model = root.at("model");
    const std::string model_type = model.value("type", "BPE");
    SINKLAB_CHECK(model_type == "BPE", "tokenizer",
                  "{}: model.type \"{}\" is not supported: sinklab reads byte-level BPE from tokenizer.json "
                  "(a SentencePiece tokenizer.model beside it loads instead)", origin, model_type);
    SINKLAB_CHECK(mentions_byte_level(root.value("pre_tokenizer", json())) ||
                      mentions_byte_level(root.value("decoder", json())),
                  "tokenizer",
                  "{}: a BPE without a ByteLevel pre-tokenizer or decoder (SentencePiece-style, e.g. Llama 2) is "
                  "not supported from tokenizer.json: load the tokenizer.model beside it", origin);
    for (const char* option : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        const json value = model.value(option, json());
        SINKLAB_CHECK(value.is_null() || value.get<std::string>().empty(), "tokenizer",
                      "{}: model.{} is not supported with byte-level BPE", origin, option);
    }
    const json dropout = model.value("dropout", json());
    SINKLAB_CHECK(dropout.is_null() || dropout.get<double>() == 0.0, "tokenizer",
                  "{}: BPE dropout (model.dropout) is a training-time option sinklab does not apply", origin);

    BpeSpec spec;
    spec.source = origin;
    for (const auto& [spelling, id] : model.at("vocab").items())
        spec.vocab.emplace_back(spelling, token_id_from_json(id, origin, fmt::format("token \"{}\"", spelling)));
    // tokenizers < 0.20 writes merges as "left right", later versions as ["left", "right"].
    for (const json& merge : model.at("merges")) {
        if (merge.is_array()) {
            spec.merges.emplace_back(merge.at(0).get<std::string>(), merge.at(1).get<std::string>());
            continue;
        }
        const std::string line = merge.get<std::string>();
        const size_t space = line.find(' ');
        SINKLAB_CHECK(space != std::string::npos, "tokenizer", "{}: merge \"{}\" is not \"left right\"", origin, line);
        spec.merges.emplace_back(line.substr(0, space), line.substr(space + 1));
    }
    spec.describe_merge = [origin](size_t rank) { return fmt::format("{} model.merges[{}]", origin, rank); };
    spec.ignore_merges = model.value("ignore_merges", false);
    spec.added_tokens = parse_added_tokens(root.value("added_tokens", json::array()), origin);
    spec.normalizer = Normalizer(root.value("normalizer", json()), origin);
    add_pre_tokenizer(root.value("pre_tokenizer", json()), origin, spec.pre_tokenizer);

    auto tokenizer = make_bpe_tokenizer(std::move(spec));
    if (auto bos = template_bos(root.value("post_processor", json()), origin)) {
        tokenizer->bos_id = bos;
        tokenizer->add_bos_by_default = true;
    }
    return tokenizer;
}

}  // namespace

std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::filesystem::path& tokenizer_json) {
    const std::string origin = tokenizer_json.string();
    const std::string text = read_text_file(tokenizer_json, "tokenizer");
    json root;
    try {
        root = json::parse(text);
    } catch (const json::parse_error& e) {
        fail("tokenizer", "{}: not valid JSON (a truncated download?): {}", origin, e.what());
    }
    try {
        return build_from_json(root, origin);
    } catch (const json::exception& e) {
        fail("tokenizer", "{}: unexpected tokenizer.json layout: {}", origin, e.what());
    }
}

}  // namespace sinklab
