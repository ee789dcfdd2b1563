// `sinklab export`: a sinklab model (or training run) as a Hugging Face folder, for the designs
// transformers has: gpt2 style -> GPT2LMHeadModel, llama style -> LlamaForCausalLM.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "model/hf_loader.h"

namespace sinklab::cli {

namespace {

struct ExportArgs {
    std::string model;
    std::string out;
};

int run_export(const ExportArgs& args) {
    ModelInfo info;
    const auto model = load_model(args.model, &info);
    const std::string architecture = export_hf_folder(*model, args.out);
    std::printf("%s -> %s (Hugging Face %s, float32, %zu parameters)\n", info.path.c_str(), args.out.c_str(),
                architecture.c_str(), model->num_params());
    return 0;
}

}  // namespace

void add_export_command(CLI::App& app) {
    auto args = std::make_shared<ExportArgs>();
    CLI::App* cmd = app.add_subcommand("export",
        "Save a sinklab model as a Hugging Face folder (config.json + model.safetensors) that transformers\n"
        "and sinklab load: gpt2-style models as GPT2LMHeadModel, llama-style ones as LlamaForCausalLM.\n"
        "Designs without such an equivalent (other attention, windows, ...) are refused with the reason.\n"
        "The folder holds no tokenizer: sinklab's models are byte-level.");
    cmd->add_option("--model", args->model, "sinklab model folder or training run")->required();
    cmd->add_option("--out", args->out, "output folder (replaced if it exists)")->required();
    cmd->callback([args] {
        int rc = run_export(*args);
        if (rc != 0) throw CLI::RuntimeError(rc);
    });
}

}  // namespace sinklab::cli
