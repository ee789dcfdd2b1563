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
    bool json = false;
};

int run_tokenize(const TokenizeArgs& args) {
    SINKLAB_CHECK(args.tokenizer.empty() != args.model.empty(), "tokenize",
                  "give the tokenizer with --tokenizer PATH or --model PATH (exactly one of them)");
    const std::unique_ptr<Tokenizer> tokenizer = choose_tokenizer(args.tokenizer, args.model);
    SINKLAB_CHECK(tokenizer != nullptr, "tokenize", "no tokenizer found for the model {}: pass --tokenizer PATH",
                  args.model);
    const std::vector<int32_t> ids = tokenizer->encode(args.text);
    if (args.json) {
        std::printf("%s\n", nlohmann::json{{"ids", ids}}.dump().c_str());
    } else {
        for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
        std::printf("\n");
    }
    return 0;
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
    auto args = std::make_shared<TokenizeArgs>();
    CLI::App* cmd = app.add_subcommand("tokenize",
        "Print the token ids of TEXT (space-separated, or {\"ids\": [...]} with --json). No BOS is added.\n"
        "--tokenizer takes a model folder, a folder with vocab.json + merges.txt, a tokenizer.json,\n"
        "a .tiktoken file, a tokenizer.model or a llama2.c tokenizer .bin; --model finds the model's own.");
    cmd->add_option("text", args->text, "the text to tokenize")->required();
    cmd->add_option("--tokenizer", args->tokenizer, "tokenizer file or folder");
    cmd->add_option("--model", args->model, "a model whose tokenizer to use (folder or llama2.c .bin)");
    cmd->add_flag("--json", args->json, "print {\"ids\": [...]}");
    cmd->callback([args] {
        int rc = run_tokenize(*args);
        if (rc != 0) throw CLI::RuntimeError(rc);
    });
}

}  // namespace sinklab::cli
