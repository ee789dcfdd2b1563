// `sinklab tokenize`: the token ids of a text, from any tokenizer sinklab reads.
#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/tokenizer_choice.h"
#include "core/error.h"

namespace sinklab::cli {

namespace {

struct TokenizeArgs {
    std::string tokenizer;
    std::string model;
    std::string text;
    std::string pair;
    bool framed = false;
    bool json = false;
};

int run_tokenize(const TokenizeArgs& args) {
    SINKLAB_CHECK(args.tokenizer.empty() != args.model.empty(), "tokenize",
                  "give the tokenizer with --tokenizer PATH or --model PATH (exactly one of them)");
    const std::unique_ptr<Tokenizer> tokenizer = choose_tokenizer(args.tokenizer, args.model);
    SINKLAB_CHECK(tokenizer != nullptr, "tokenize", "no tokenizer found for the model {}: pass --tokenizer PATH",
                  args.model);
    SINKLAB_CHECK(args.pair.empty() || args.framed, "tokenize", "--pair TEXT2 belongs to --framed");
    std::vector<int32_t> ids = tokenizer->encode(args.text);
    std::vector<int32_t> token_types;
    if (args.framed) {
        // an encoder's input: [CLS] TEXT [SEP] (TEXT2 [SEP]), as its tokenizer frames it
        const std::vector<int32_t> second = tokenizer->encode(args.pair);
        FramedInput framed = args.pair.empty() ? frame_sequence(*tokenizer, ids) : frame_sequence(*tokenizer, ids, second);
        ids = std::move(framed.ids);
        token_types = std::move(framed.token_types);
    }
    if (args.json) {
        nlohmann::json out{{"ids", ids}};
        if (args.framed) out["token_type_ids"] = token_types;
        std::printf("%s\n", out.dump().c_str());
    } else {
        for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
        std::printf("\n");
        if (!args.pair.empty()) {
            for (size_t i = 0; i < token_types.size(); ++i) std::printf("%s%d", i ? " " : "", token_types[i]);
            std::printf("\n");
        }
    }
    return 0;
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
    auto args = std::make_shared<TokenizeArgs>();
    CLI::App* cmd = app.add_subcommand("tokenize",
        "Print the token ids of TEXT (space-separated, or {\"ids\": [...]} with --json). No BOS is added.\n"
        "--tokenizer takes a model folder, a folder with vocab.json + merges.txt, a tokenizer.json,\n"
        "a .tiktoken file, a tokenizer.model, a llama2.c tokenizer .bin, an encoder's vocab.txt (WordPiece)\n"
        "or sentencepiece.bpe.model (XLM-R); --model finds the model's own.");
    cmd->add_option("text", args->text, "the text to tokenize")->required();
    cmd->add_option("--tokenizer", args->tokenizer, "tokenizer file or folder");
    cmd->add_option("--model", args->model, "a model whose tokenizer to use (folder or llama2.c .bin)");
    cmd->add_flag("--framed", args->framed,
                  "an encoder's input: its special tokens around TEXT ([CLS] TEXT [SEP], <s> TEXT </s>)");
    cmd->add_option("--pair", args->pair,
                    "with --framed: a second text, framed as a sentence pair; the token types are printed too");
    cmd->add_flag("--json", args->json, "print {\"ids\": [...]} (and \"token_type_ids\" with --framed)");
    cmd->callback([args] {
        int rc = run_tokenize(*args);
        if (rc != 0) throw CLI::RuntimeError(rc);
    });
}

}  // namespace sinklab::cli
