#pragma once
// The training loop: batches, AdamW, schedule, periodic evaluation (validation loss, Sink_1),
// train_log.jsonl, atomic checkpoints and exact resume; data-parallel over the ranks of an MPI job
// (docs/scale-out.md): each rank trains on its share of the global batch, gradients are averaged
// across the ranks, every rank updates the same weights, and rank 0 alone writes.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/progress.h"
#include "distributed/communicator.h"
#include "model/transformer.h"
#include "train/adamw.h"
#include "train/data.h"
#include "train/divergence.h"
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
    std::string diverged;  // why the run stopped early (train/divergence.h); empty when it finished
    // When it diverged: the checkpoint it leaves, which holds the last state known to be good.
    std::optional<long> last_good_step{};
};

// Gradient buckets of 4 MiB: a bucket should stay well above the network's latency times its
// bandwidth (about 100 KB on a fast network), so that each reduction runs at the network's speed,
// and well below the model's gradients, so that several overlap backward (docs/scale-out.md has
// this machine's figures for 4 MiB against one all-reduce after backward).
constexpr size_t kDefaultBucketBytes = size_t{4} << 20;

struct TrainOptions {
    bool progress = true;  // a live progress line on stderr (rank 0's)
    int threads = 0;       // 0: all cores, or in a job of several ranks the cores of a node divided among its ranks
    // The ranks that train this run together (data parallel); one rank by default.
    Communicator ranks;
    size_t bucket_bytes = kDefaultBucketBytes;  // gradient all-reduce buckets; 0: one all-reduce after backward
    // The attention kernel of the training steps and evaluations (results agree to float rounding).
    AttentionKernel attention_kernel = AttentionKernel::automatic;
    // Fault injection for the resume tests: the process kills itself with SIGKILL right after
    // this step (0: right after the log's start line, before the first checkpoint; -1 = never);
    // kill_rank >= 0: only that rank does.
    long kill_after_step = -1;
    int kill_rank = -1;
};

// The first half of an optimizer step on a batch (B, T): zero the gradients, forward, backward,
// and the global gradient norm with the scale that clips it to `clip`. With `average`, the batch is
// this rank's share of the global batch: the gradients are averaged over the ranks as backward
// produces them, and the loss and norm are the global batch's (rank 0's, on every rank).
struct StepResult {
    double loss = 0.0;
    double grad_norm = 0.0;  // before clipping
    float clip_scale = 1.0f;
};
StepResult compute_gradients(Transformer& model, const int32_t* tokens, const int32_t* targets, int B, int T,
                             double clip, AttentionKernel kernel = AttentionKernel::automatic,
                             BucketedAverage* average = nullptr);
// A whole optimizer step: compute_gradients, then AdamW at `lr`. The throughput benchmarks' step.
StepResult optimizer_step(Transformer& model, AdamW& optimizer, const int32_t* tokens, const int32_t* targets, int B,
                          int T, float lr, double clip, long step,
                          AttentionKernel kernel = AttentionKernel::automatic, BucketedAverage* average = nullptr);

// The configuration a run trains with: BOS widens the vocabulary, the model sees seq-len positions.
// Validated: throws sinklab::Error naming the key.
TrainConfig prepare_train_config(TrainConfig config);

// Checkpoints hold only states known to be good: the checkpoint of the state after step s is
// written during step s + 1, once that step's forward and backward have shown a healthy loss and
// gradient norm for it (and before its update), and the final one after the final evaluation.
// The first is the initial state, written during step 1; later ones every checkpoint_every steps
// (or at evaluations) and whenever checkpoint_minutes have passed. A step that diverges
// (train/divergence.h) stops the run with the last checkpoint untouched; the log's last line is then
// {"step", "diverged": true, "reason"} instead of the final evaluation.
class Trainer {
public:
    // A new run writing into `out` (created). A folder holding a run with a checkpoint is refused
    // (resume it); one whose run stopped before its first checkpoint is started over, with a notice.
    // Collective over options.ranks, as are resume, run and evaluate: a failure on any rank fails
    // every rank together (Communicator::agree).
    Trainer(TrainConfig config, std::filesystem::path out, TrainOptions options);
    // Continues the run in `out` from its checkpoint, exactly; a run that stopped before its first
    // checkpoint starts over from its logged configuration, with a notice. A run saved by N ranks
    // resumes on any number of ranks that divides its batch (the same global batches; with another
    // number of ranks the loss curve may differ in its last digits).
    static std::unique_ptr<Trainer> resume(const std::filesystem::path& out, TrainOptions options);

    TrainResult run();
    // windows = 0: the whole validation split. The windows are split among the ranks; the
    // validation loss is summed window by window in window order, the same for any number of ranks.
    Evaluation evaluate(int windows);
    Transformer& model() { return *model_; }
    const TrainConfig& config() const { return config_; }

private:
    Trainer() = default;
    static std::unique_ptr<Trainer> resume_on_this_rank(const std::filesystem::path& out, TrainOptions options);
    static std::unique_ptr<Trainer> resume_from(const nlohmann::json& state, const std::filesystem::path& ckpt,
                                                const std::filesystem::path& out, TrainOptions options);
    void setup_data(bool resuming);
    // Every rank has the same data and the same weights (collective); throws AgreedError otherwise.
    void check_ranks_agree(bool data);
    // One step; the reason when it diverged (its update is then not applied).
    std::string train_step();
    // Writes checkpoint/ for the state after step_, whose batch sampler stood at `sampler_state`;
    // a failed write leaves the previous checkpoint and throws naming it. Collective: rank 0 writes.
    void save_checkpoint(const Rng::State& sampler_state);
    void write_checkpoint_folder(const std::filesystem::path& tmp, const Rng::State& sampler_state);
    bool checkpoint_due_now() const;
    TrainResult stop_diverged(const std::string& reason, long step, Progress& progress);
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
    std::unique_ptr<BucketedAverage> average_;  // data parallel: the gradients' all-reduce
    int local_batch_ = 0, first_row_ = 0;       // this rank's rows of the global batch
    std::vector<int32_t> tokens_, targets_;     // (local_batch_, T)
    long step_ = 0;  // optimizer steps completed
    double last_loss_ = 0.0, last_grad_norm_ = 0.0;
    DivergenceMonitor divergence_;
    std::optional<long> checkpoint_step_;  // the step of the checkpoint on disk
    bool checkpoint_pending_ = false;      // the state after step_ is to be checkpointed during the next step
    double last_checkpoint_clock_ = 0.0;   // now_seconds() of the last checkpoint (or of the run's start)
    double checkpoint_seconds_in_step_ = 0.0;  // the part of the current step spent writing a checkpoint
    double train_seconds_ = 0.0;  // time spent in steps (for tokens/s), carried across resumes
    // Wall time of the run (steps, evaluations, checkpoints) for max_minutes, carried across resumes
    // as of the last checkpoint; run_clock_start_ is when this process's share began.
    double run_seconds_ = 0.0;
    double run_clock_start_ = 0.0;
    double run_seconds() const;
};

}  // namespace sinklab
