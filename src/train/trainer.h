#pragma once
// The training loop: batches, AdamW, schedule, periodic evaluation (validation loss, Sink_1),
// train_log.jsonl, atomic checkpoints and exact resume.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "model/transformer.h"
#include "train/adamw.h"
#include "train/data.h"
#include "train/train_config.h"

namespace sinklab {

struct Evaluation {
    long step = 0;
    double val_loss = 0.0;
    int windows = 0;
    double sink1 = 0.0;                    // Sink_1^eps in percent
    std::optional<double> sink_star;       // Sink_*^eps of the slot column in percent (designs with a slot)
    std::vector<double> alpha1_per_layer;  // mean alpha_1 per layer
    // Massive activations (Sun et al. 2024) on the Sink_1 windows: MassiveRatioAccumulator's max over
    // layers of max|h| / median|h| of that layer's residual stream (metrics/massive_activations.h).
    double massive_ratio = 0.0;
    nlohmann::json to_json() const;
};

struct TrainResult {
    long steps = 0;
    double final_val_loss = 0.0;
    double final_sink1 = 0.0;
    double tokens_per_s = 0.0;  // mean over the run's steps
    std::filesystem::path out;
    std::string diverged;  // why the run stopped early (a non-finite loss or gradient); empty when it finished
};

struct TrainOptions {
    bool progress = true;  // a live progress line on stderr
    int threads = 0;
    // The attention kernel of the training steps and evaluations (results agree to float rounding).
    AttentionKernel attention_kernel = AttentionKernel::automatic;
    // Fault injection for the resume tests: the process kills itself with SIGKILL right after
    // this step (0 = never).
    long kill_after_step = 0;
};

// One optimizer step on a batch (B, T): zero the gradients, forward, backward, clip the global
// gradient norm to `clip`, AdamW at `lr`. The trainer's step and the throughput benchmarks' step.
struct StepResult {
    double loss = 0.0;
    double grad_norm = 0.0;  // before clipping
};
StepResult optimizer_step(Transformer& model, AdamW& optimizer, const int32_t* tokens, const int32_t* targets, int B,
                          int T, float lr, double clip, long step,
                          AttentionKernel kernel = AttentionKernel::automatic);

// The configuration a run trains with: BOS widens the vocabulary, the model sees seq-len positions.
// Validated: throws sinklab::Error naming the key.
TrainConfig prepare_train_config(TrainConfig config);

class Trainer {
public:
    // A new run writing into `out` (created; an existing run there is an error unless resuming).
    // A step whose loss or gradient norm is not finite stops the run: the log's last line is then
    // {"step", "diverged": true, "reason"} instead of the final evaluation.
    Trainer(TrainConfig config, std::filesystem::path out, TrainOptions options);
    // Continues the run in `out` from its checkpoint, exactly.
    static std::unique_ptr<Trainer> resume(const std::filesystem::path& out, TrainOptions options);

    TrainResult run();
    Evaluation evaluate(int windows);  // windows = 0: the whole validation split
    Transformer& model() { return *model_; }
    const TrainConfig& config() const { return config_; }

private:
    Trainer() = default;
    void setup_data();
    void train_step();
    void save_checkpoint();
    void save_snapshot(long step);
    void append_log(const nlohmann::json& line);
    void truncate_log_after(long step);

    TrainConfig config_;
    std::filesystem::path out_;
    TrainOptions options_;
    ByteCorpus corpus_;
    std::unique_ptr<Transformer> model_;
    std::unique_ptr<AdamW> optimizer_;
    std::unique_ptr<BatchSampler> sampler_;
    std::vector<int32_t> tokens_, targets_;
    long step_ = 0;  // optimizer steps completed
    double last_loss_ = 0.0, last_grad_norm_ = 0.0;
    double train_seconds_ = 0.0;  // time spent in steps (for tokens/s), carried across resumes
    // Wall time of the run (steps, evaluations, checkpoints) for max_minutes, carried across resumes
    // as of the last checkpoint; run_clock_start_ is when this process's share began.
    double run_seconds_ = 0.0;
    double run_clock_start_ = 0.0;
    double run_seconds() const;
};

}  // namespace sinklab
