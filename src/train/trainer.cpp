#include "train/trainer.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "core/json_numbers.h"
#include "core/memory.h"
#include "core/progress.h"
#include "core/threads.h"
#include "io/safetensors.h"
#include "metrics/attention_stats.h"
#include "metrics/massive_activations.h"
#include "metrics/sink_scores.h"
#include "model/checkpoint.h"
#include "ops/cross_entropy.h"

namespace sinklab {

namespace fs = std::filesystem;

namespace {

constexpr const char* kLogFile = "train_log.jsonl";
constexpr const char* kStateFile = "trainer_state.json";

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Collects what an evaluation measures from the taps of a forward pass: Sink_1, and Sink_* when a
// design with a slot taps its slot weights, from the materialised weights or the blockwise
// kernel's column sums of key 1; and the massive-activation ratio of each layer's residual stream
// (Tap::block_out).
class EvalObserver : public TensorObserver {
public:
    // T: the positions the blocks see
    EvalObserver(SinkScoreAccumulator& acc, ProxyKind proxy, int layers, int T)
        : acc_(acc), proxy_(proxy), massive_(layers), T_(T) {}

    void observe(Tap tap, int layer, const float* data, const Shape& shape) override {
        if (tap == Tap::attn_slot_weights) {
            slot_.keep(layer, data, shape);
        } else if (tap == Tap::attn_weights) {
            acc_.add(layer, data, slot_.take(layer), static_cast<int>(shape[0]), static_cast<int>(shape[2]), proxy_);
        } else if (tap == Tap::attn_column_sums) {
            const int B = static_cast<int>(shape[0]), H = static_cast<int>(shape[1]);
            const float* slot = slot_.take(layer);
            if (slot) slot_weight_sums(slot_sums_, slot, B, H, T_);
            acc_.add_column_sums(layer, data, slot ? slot_sums_.data() : nullptr, B, T_, static_cast<int>(shape[2]));
        } else if (tap == Tap::block_out) {
            massive_.add(layer, data, shape_numel(shape));
        }
    }

    // The ratio over every rank's windows: rank 0 pools the ranks' |h| per layer (the median of the
    // pool is the single process's), computes it and tells the others.
    double reduce_massive_ratio(const Communicator& ranks) {
        if (!ranks.distributed()) return massive_.ratio();
        for (int l = 0; l < massive_.layers(); ++l) massive_.magnitudes(l) = ranks.gather(massive_.magnitudes(l));
        return ranks.broadcast(ranks.is_root() ? massive_.ratio() : 0.0);
    }

private:
    SinkScoreAccumulator& acc_;
    ProxyKind proxy_;
    SlotWeightsTap slot_;
    std::vector<float> slot_sums_;  // (B, NH) the slot's weight summed over the queries
    MassiveRatioAccumulator massive_;
    int T_;
};

// A checksum of a float buffer that does not depend on the thread count: a sum, modulo 2^64, of
// each element's bits mixed with its index (splitmix64's finaliser).
uint64_t buffer_checksum(const void* data, size_t bytes) {
    const auto* words = static_cast<const uint32_t*>(data);
    const long n = static_cast<long>(bytes / sizeof(uint32_t));
    uint64_t sum = 0;
    #pragma omp parallel for reduction(+ : sum) schedule(static)
    for (long i = 0; i < n; ++i) {
        uint64_t z = (static_cast<uint64_t>(i) << 32 | words[i]) + 0x9e3779b97f4a7c15ULL;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        sum += z ^ (z >> 31);
    }
    const auto* tail = static_cast<const uint8_t*>(data) + n * sizeof(uint32_t);
    for (size_t i = 0; i < bytes % sizeof(uint32_t); ++i) sum += static_cast<uint64_t>(tail[i]) << (8 * i);
    return sum;
}

// Whether `out` holds a checkpoint (checkpoint.old: a kill between replace_directory's renames).
bool has_checkpoint(const fs::path& out) {
    std::error_code ec;
    return fs::exists(out / "checkpoint", ec) || fs::exists(out / "checkpoint.old", ec);
}

// The configuration on the start line of a run's log, if it has one.
std::optional<TrainConfig> logged_config(const fs::path& log) {
    std::ifstream in(log);
    std::string line;
    while (std::getline(in, line)) {
        const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object() && j.value("event", "") == "start" && j.contains("config"))
            return train_config_from_json(j["config"], log.string() + " (start line)");
    }
    return std::nullopt;
}

// Prefix LM: the loss skips the first prefix-1 predictions (their targets are visible context).
void mask_prefix_targets(int32_t* targets, int B, int T, int prefix) {
    for (int b = 0; b < B; ++b)
        for (int t = 0; t < prefix - 1 && t < T; ++t) targets[static_cast<long>(b) * T + t] = -1;
}

}  // namespace

nlohmann::json Evaluation::to_json() const {
    nlohmann::json j = {{"step", step},
                        {"val_loss", val_loss},
                        {"eval_windows", windows},
                        {"sink1", sink1},
                        {"alpha1_per_layer", alpha1_per_layer},
                        {"massive_ratio", massive_ratio}};
    if (sink_star) j["sink_star"] = *sink_star;
    return j;
}

TrainConfig prepare_train_config(TrainConfig config) {
    if (config.bos) config.model.vocab_size = std::max(config.model.vocab_size, kByteBos + 1);
    config.model.max_seq_len = std::max(config.model.max_seq_len, config.seq_len);
    config.validate();
    return config;
}

Trainer::Trainer(TrainConfig config, fs::path out, TrainOptions options) : out_(std::move(out)), options_(std::move(options)) {
    const Communicator& ranks = options_.ranks;
    ranks.agree([&] {
        config_ = prepare_train_config(std::move(config));
        divergence_ = DivergenceMonitor(config_.spike_factor);
        if (ranks.is_root())  // rank 0 owns the run folder
            SINKLAB_CHECK(!has_checkpoint(out_), "train",
                          "{}: already holds a training run; use --resume {} to continue it, or another --out",
                          out_.string(), out_.string());
        set_threads(options_.threads > 0 ? options_.threads : default_threads_per_rank());
        setup_data(false);
        model_ = std::make_unique<Transformer>(config_.model);
        model_->init_weights(config_.seed);
        optimizer_ = std::make_unique<AdamW>(
            *model_, AdamWOptions{config_.beta1, config_.beta2, config_.adam_eps, config_.wd, config_.decay_all});
        // the batch stream has its own seed, derived from the run's, so changing init does not change data order
        sampler_ = std::make_unique<BatchSampler>(corpus_.train, config_.batch, config_.seq_len, config_.bos,
                                                  config_.seed ^ 0x5eed5eed5eed5eedULL);
    });
    check_ranks_agree(true);
    ranks.agree([&] {
        if (!ranks.is_root()) return;
        std::error_code ec;
        if (fs::exists(out_ / kLogFile, ec)) {
            // Killed before its first checkpoint: nothing to continue, and nothing lost by starting over.
            std::fprintf(stderr, "%s: the run there stopped before its first checkpoint; starting over from step 0\n",
                         out_.c_str());
            fs::remove(out_ / kLogFile, ec);
        }
        fs::create_directories(out_);
    });
}

void Trainer::setup_data(bool resuming) {
    const Communicator& ranks = options_.ranks;
    if (config_.batch % ranks.size() != 0) {
        if (resuming)
            fail("train", "the run's batch of {} does not divide among {} ranks (each rank trains on an equal share of "
                          "the global batch): resume it on a number of ranks that divides {}",
                 config_.batch, ranks.size(), config_.batch);
        fail("train", "--batch {} does not divide among {} ranks (each rank trains on an equal share of the global "
                      "batch): use a multiple of {}",
             config_.batch, ranks.size(), ranks.size());
    }
    local_batch_ = config_.batch / ranks.size();
    first_row_ = ranks.rank() * local_batch_;
    const fs::path data = config_.data.empty() ? default_corpus_path() : fs::path(config_.data);
    // Everything this rank will hold (its share of the batch), checked before any of it is allocated.
    double corpus_bytes = 0;
    for (const fs::path& file : corpus_files(data)) corpus_bytes += static_cast<double>(fs::file_size(file));
    TrainConfig share = config_;
    share.batch = local_batch_;
    require_memory(share.memory_bytes(num_threads(), options_.attention_kernel) + corpus_bytes, "train",
                   fmt::format("training on {} ({} of text)", data.string(), format_gigabytes(corpus_bytes)),
                   "train on less text, or a smaller model");
    corpus_ = load_byte_corpus(data, config_.val_fraction);
    tokens_.resize(static_cast<size_t>(local_batch_) * config_.seq_len);
    targets_.resize(tokens_.size());
    if (ranks.distributed()) average_ = std::make_unique<BucketedAverage>(ranks, options_.bucket_bytes);
}

void Trainer::check_ranks_agree(bool data) {
    const Communicator& ranks = options_.ranks;
    if (!ranks.distributed()) return;
    if (data) {
        const uint64_t sum = buffer_checksum(corpus_.train.data(), corpus_.train.size()) ^
                             buffer_checksum(corpus_.val.data(), corpus_.val.size()) * 3 ^ corpus_.total_bytes();
        if (!ranks.same_on_all_ranks(sum))
            throw AgreedError(fmt::format(
                "[data] {}: the ranks read different data (the file differs between their machines); every rank "
                "needs the same copy",
                config_.data.empty() ? default_corpus_path().string() : config_.data));
    }
    if (!ranks.same_on_all_ranks(buffer_checksum(model_->param_data(), model_->num_params() * sizeof(float))))
        throw AgreedError(fmt::format(
            "[train] after step {} the ranks hold different weights (ranks whose machines compute differently, or a "
            "bug); the last checkpoint in {} is intact",
            step_, out_.string()));
}

std::unique_ptr<Trainer> Trainer::resume(const fs::path& out, TrainOptions options) {
    const Communicator ranks = options.ranks;
    // Killed before its first checkpoint: the log's first line holds the configuration. Rank 0, which
    // owns the run folder, decides, and tells the others the configuration to start over with.
    std::string restart = ranks.agree([&] {
        std::error_code ec;
        if (!ranks.is_root() || has_checkpoint(out) || !fs::exists(out / kLogFile, ec)) return std::string();
        const std::optional<TrainConfig> logged = logged_config(out / kLogFile);
        SINKLAB_CHECK(logged.has_value(), "train",
                      "{}: no checkpoint, and its {} has no start line to restart from; start a new run with --out",
                      out.string(), kLogFile);
        return logged->to_json().dump();
    });
    restart = ranks.broadcast(restart);
    if (!restart.empty())
        return std::make_unique<Trainer>(train_config_from_json(nlohmann::json::parse(restart), "rank 0's start line"),
                                         out, std::move(options));
    std::unique_ptr<Trainer> t = ranks.agree([&] { return resume_on_this_rank(out, std::move(options)); });
    t->check_ranks_agree(true);
    return t;
}

std::unique_ptr<Trainer> Trainer::resume_on_this_rank(const fs::path& out, TrainOptions options) {
    const fs::path ckpt = resolve_model_dir(out);
    SINKLAB_CHECK(fs::exists(ckpt / kStateFile), "train", "{}: no trainer state (was this folder written by `sinklab train`?)",
                  ckpt.string());
    const nlohmann::json state = read_json_file(ckpt / kStateFile, "train");
    try {
        return resume_from(state, ckpt, out, std::move(options));
    } catch (const nlohmann::json::exception& e) {
        fail("train", "{}: not a trainer state sinklab wrote: {}", (ckpt / kStateFile).string(), e.what());
    }
}

std::unique_ptr<Trainer> Trainer::resume_from(const nlohmann::json& state, const fs::path& ckpt, const fs::path& out,
                                              TrainOptions options) {
    std::unique_ptr<Trainer> t(new Trainer());
    t->out_ = out;
    t->options_ = std::move(options);
    t->config_ = train_config_from_json(state.at("train_config"), (ckpt / kStateFile).string());
    const Communicator& ranks = t->options_.ranks;
    const bool speaks = ranks.is_root();  // rank 0 alone prints
    // The threads the run used, unless the user or a job of several ranks chooses.
    const int threads = static_cast<int>(json_integer(state.value("threads", nlohmann::json(0)), "train",
                                                      "trainer_state.json threads", 0, 1 << 20));
    const int saved_ranks = static_cast<int>(json_integer(state.value("ranks", nlohmann::json(1)), "train",
                                                          "trainer_state.json ranks", 1, 1 << 24));
    const int job_default = default_threads_per_rank();
    if (t->options_.threads == 0) t->options_.threads = job_default > 0 ? job_default : threads;
    set_threads(t->options_.threads);
    if (threads > 0 && num_threads() != threads && speaks)
        std::fprintf(stderr, "warning: resuming with %d threads per rank, the run used %d: the loss curve may differ in "
                     "the last digits\n", num_threads(), threads);
    if (saved_ranks != ranks.size() && speaks)
        std::fprintf(stderr, "note: resuming a run of %d rank%s on %d: the same global batches of %d, the loss curve "
                     "may differ in the last digits\n", saved_ranks, saved_ranks == 1 ? "" : "s", ranks.size(),
                     t->config_.batch);
    t->setup_data(true);
    // The checkpoint's model must be the one the trainer state trains (a folder may mix two runs):
    // compared before its weights are read, whose shapes would otherwise name only the first tensor.
    const nlohmann::json saved_config = read_json_file(ckpt / "config.json", "model");
    const nlohmann::json trained = t->config_.model.to_json();
    if (saved_config.contains("sinklab")) {
        const nlohmann::json saved_model =
            ModelConfig::from_json(saved_config["sinklab"], (ckpt / "config.json").string()).to_json();
        if (saved_model != trained) {
            const nlohmann::json patch = nlohmann::json::diff(trained, saved_model);
            const nlohmann::json::json_pointer key(patch[0]["path"].get<std::string>());
            auto value_in = [&](const nlohmann::json& j) { return j.contains(key) ? j.at(key).dump() : "unset"; };
            fail("train", "{}: the model in config.json is another architecture than the run in {} trains ({}: {} "
                          "there, {} in the run): the folder mixes two runs; resume the run this checkpoint came from, "
                          "or start a new one with --out",
                 ckpt.string(), kStateFile, key.to_string().substr(1), value_in(saved_model), value_in(trained));
        }
    }
    t->model_ = load_model_folder(ckpt);
    t->optimizer_ = std::make_unique<AdamW>(
        *t->model_,
        AdamWOptions{t->config_.beta1, t->config_.beta2, t->config_.adam_eps, t->config_.wd, t->config_.decay_all});
    SafetensorsFile opt(ckpt / "optimizer.safetensors");
    const Shape shape{static_cast<int64_t>(t->model_->num_params())};
    Tensor m = opt.read_f32("m", shape), v = opt.read_f32("v", shape);
    std::memcpy(t->optimizer_->first_moment().data(), m.data(), m.numel() * sizeof(float));
    std::memcpy(t->optimizer_->second_moment().data(), v.data(), v.numel() * sizeof(float));
    t->sampler_ = std::make_unique<BatchSampler>(t->corpus_.train, t->config_.batch, t->config_.seq_len,
                                                 t->config_.bos, 0);
    const auto& rng = state.at("sampler_rng");
    Rng::State rs{};
    for (int i = 0; i < 4; ++i) {
        const nlohmann::json& word = rng.at("s").at(i);
        SINKLAB_CHECK(word.is_number_unsigned(), "train", "{}: sampler_rng.s[{}] is {}, not an unsigned integer",
                      (ckpt / kStateFile).string(), i, word.dump());
        rs.s[i] = word.get<uint64_t>();
    }
    rs.spare = rng.at("spare").get<double>();
    rs.has_spare = rng.at("has_spare").get<bool>();
    t->sampler_->rng().set_state(rs);
    t->step_ = json_integer(state.at("step"), "train", "trainer_state.json step", 0);
    t->checkpoint_step_ = t->step_;
    t->train_seconds_ = state.value("train_seconds", 0.0);
    t->run_seconds_ = state.value("run_seconds", 0.0);
    t->divergence_ = DivergenceMonitor(t->config_.spike_factor);
    // Checkpoints written before spike detection have no history: it then starts empty.
    if (state.contains("divergence_history"))
        t->divergence_.restore(state["divergence_history"], (ckpt / kStateFile).string());
    t->truncate_log_after(t->step_);
    return t;
}

void Trainer::append_log(const nlohmann::json& line) {
    if (!options_.ranks.is_root()) return;  // rank 0 writes the run folder
    std::ofstream log(out_ / kLogFile, std::ios::app);
    log << line.dump() << '\n';
    log.flush();
    SINKLAB_CHECK(log.good(), "train", "{}: cannot append to the log", (out_ / kLogFile).string());
}

void Trainer::truncate_log_after(long step) {
    // Lines written after the checkpoint (and a line cut short by a kill) are dropped, so the
    // resumed log is the log of an uninterrupted run.
    if (!options_.ranks.is_root()) return;
    const fs::path path = out_ / kLogFile;
    if (!fs::exists(path)) return;
    std::ifstream in(path);
    std::string line, kept;
    while (std::getline(in, line)) {
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer() || j["step"].get<int64_t>() > step)
            continue;
        kept += line + "\n";
    }
    write_file_atomic(path, kept);
}

Evaluation Trainer::evaluate(int windows) {
    const Communicator& ranks = options_.ranks;
    Evaluation ev;
    ev.step = step_;
    const int T = config_.seq_len, B = config_.batch;
    const auto offsets = validation_windows(corpus_.val.size(), T, config_.bos, windows);
    std::vector<int32_t> tokens(static_cast<size_t>(B) * T), targets(tokens.size());
    ForwardOptions inference;
    inference.training = false;
    inference.attention_kernel = options_.attention_kernel;
    // Each rank takes a contiguous share of the windows and sums each window's losses; the sums
    // (zero for the other ranks' windows) add up across the ranks exactly, and are then added in
    // window order: the same value for any number of ranks.
    const auto [first, last] = ranks.share(offsets.size());
    std::vector<double> window_loss(offsets.size() + 1, 0.0);  // the last entry: counted targets
    for (size_t i = first; i < last; i += B) {
        const int n = static_cast<int>(std::min<size_t>(B, last - i));
        for (int b = 0; b < n; ++b)
            fill_window(corpus_.val.data() + offsets[i + b], T, config_.bos, tokens.data() + static_cast<long>(b) * T,
                        targets.data() + static_cast<long>(b) * T);
        if (config_.model.prefix > 0) mask_prefix_targets(targets.data(), n, T, config_.model.prefix);
        model_->forward(tokens.data(), targets.data(), n, T, inference);
        const float* losses = model_->losses();  // (n, T), 0 where a target is masked
        for (int b = 0; b < n; ++b) {
            double sum = 0.0;
            for (int t = 0; t < T; ++t) sum += losses[static_cast<long>(b) * T + t];
            window_loss[i + b] = sum;
        }
        window_loss.back() += count_targets(targets.data(), n * T);
    }
    ranks.allreduce_sum(window_loss.data(), window_loss.size());
    double loss_sum = 0.0;
    for (size_t i = 0; i < offsets.size(); ++i) loss_sum += window_loss[i];
    const double counted = window_loss.back();
    ev.val_loss = counted > 0 ? loss_sum / counted : 0.0;
    ev.windows = static_cast<int>(offsets.size());

    // Sink_1 on windows of the definition's length (T = 64 unless the model is shorter).
    const int ST = std::min(config_.sink_seq_len, config_.seq_len);
    const auto sink_offsets = validation_windows(corpus_.val.size(), ST, config_.bos, config_.sink_windows);
    SinkScoreAccumulator acc(config_.model.n_layers, config_.model.n_heads, 1, config_.sink_eps);
    EvalObserver observer(acc, sink_metric_proxy(config_.model.attention), config_.model.n_layers,
                          ST + (config_.model.attention.uses_sink_token() ? 1 : 0));
    ForwardOptions probe;
    probe.training = false;
    probe.observer = &observer;
    probe.attention_kernel = options_.attention_kernel;
    std::vector<int32_t> sink_tokens(static_cast<size_t>(B) * ST), sink_targets(sink_tokens.size());
    const auto [sink_first, sink_last] = ranks.share(sink_offsets.size());
    for (size_t i = sink_first; i < sink_last; i += B) {
        const int n = static_cast<int>(std::min<size_t>(B, sink_last - i));
        for (int b = 0; b < n; ++b)
            fill_window(corpus_.val.data() + sink_offsets[i + b], ST, config_.bos,
                        sink_tokens.data() + static_cast<long>(b) * ST, sink_targets.data() + static_cast<long>(b) * ST);
        model_->forward(sink_tokens.data(), nullptr, n, ST, probe);
    }
    ev.massive_ratio = observer.reduce_massive_ratio(ranks);
    if (ranks.distributed()) {  // the ranks' sums and counts add up; the counts, and so Sink_1, exactly
        std::vector<double> totals = acc.totals();
        ranks.allreduce_sum(totals.data(), totals.size());
        acc.set_totals(totals);
    }
    ev.sink1 = acc.sink_percent(1);
    if (acc.has_slot()) ev.sink_star = acc.sink_percent(SinkScoreAccumulator::kSlot);
    ev.alpha1_per_layer = acc.alpha_per_layer(1);
    return ev;
}

StepResult compute_gradients(Transformer& model, const int32_t* tokens, const int32_t* targets, int B, int T,
                             double clip, AttentionKernel kernel, BucketedAverage* average) {
    model.zero_grad();
    StepResult r;
    ForwardOptions forward;
    forward.attention_kernel = kernel;
    r.loss = model.forward(tokens, targets, B, T, forward);
    if (!average) {
        model.backward();
    } else {
        average->begin(model.grad_data(), model.num_params());
        model.backward([average](size_t first, size_t last) { average->ready(first, last); });
        average->finish();
        // Every rank holds B whole sequences with the same number of counted targets (masking is per
        // sequence), so the mean of the ranks' means is the global batch's mean, as the gradients are.
        average->ranks().allreduce_sum(&r.loss, 1);
        r.loss /= average->ranks().size();
    }
    GradClip c = grad_clip(model, clip);
    r.grad_norm = c.norm;
    r.clip_scale = c.scale;
    // The norm's last bits depend on the thread count, which may differ between ranks, and an
    // all-reduce need not give every rank the same bits: rank 0's loss and norm decide, so that every
    // rank makes the same update and judges divergence alike (train/divergence.h).
    if (average) r = average->ranks().broadcast(r);
    return r;
}

StepResult optimizer_step(Transformer& model, AdamW& optimizer, const int32_t* tokens, const int32_t* targets, int B,
                          int T, float lr, double clip, long step, AttentionKernel kernel, BucketedAverage* average) {
    const StepResult r = compute_gradients(model, tokens, targets, B, T, clip, kernel, average);
    optimizer.update(model, lr, step, r.clip_scale);
    return r;
}

std::string Trainer::train_step() {
    const Rng::State sampler_state = sampler_->rng().state();  // the state a checkpoint before this step holds
    sampler_->next(tokens_.data(), targets_.data(), first_row_, local_batch_);
    if (config_.model.prefix > 0) mask_prefix_targets(targets_.data(), local_batch_, config_.seq_len, config_.model.prefix);
    const long step = step_ + 1;
    const StepResult r = compute_gradients(*model_, tokens_.data(), targets_.data(), local_batch_, config_.seq_len,
                                           config_.clip, options_.attention_kernel, average_.get());
    last_loss_ = r.loss;
    last_grad_norm_ = r.grad_norm;
    // This step's loss and gradient norm are those of the state after step_: judge them before that
    // state may become a checkpoint.
    const std::string diverged = divergence_.diagnose(r.loss, r.grad_norm);
    if (!diverged.empty()) return diverged;
    if (checkpoint_pending_) {
        const double start = now_seconds();
        save_checkpoint(sampler_state);
        checkpoint_seconds_in_step_ = now_seconds() - start;  // not training time (tokens/s)
    }
    divergence_.record(r.loss, r.grad_norm);
    const float lr = learning_rate_at(step, config_.warmup, config_.steps, config_.lr, config_.min_lr);
    optimizer_->update(*model_, lr, step, r.clip_scale);
    step_ = step;
    return "";
}

bool Trainer::checkpoint_due_now() const {
    const TrainConfig& c = config_;
    const long every = c.checkpoint_every > 0 ? c.checkpoint_every : c.eval_every;
    if (every > 0 && step_ % every == 0) return true;
    return c.checkpoint_minutes > 0 && now_seconds() - last_checkpoint_clock_ >= c.checkpoint_minutes * 60.0;
}

void Trainer::save_checkpoint(const Rng::State& sampler_state) {
    // Everything goes into a fresh folder that replaces checkpoint/ in one rename: a kill at any
    // moment leaves either the previous checkpoint or the new one, complete. Every rank holds the
    // same state; rank 0 writes it, and a failed write stops every rank together.
    options_.ranks.agree([&] {
        if (!options_.ranks.is_root()) return;
        const fs::path tmp = out_ / "checkpoint.tmp";
        std::error_code ec;
        fs::remove_all(tmp, ec);
        try {
            write_checkpoint_folder(tmp, sampler_state);
            replace_directory(tmp, out_ / "checkpoint");
        } catch (const std::exception& e) {
            // A full disk (or a file-size limit) must not cost the checkpoint already there.
            fs::remove_all(tmp, ec);
            const std::string kept = checkpoint_step_ ? fmt::format("the previous checkpoint {} (step {}) is kept",
                                                                    (out_ / "checkpoint").string(), *checkpoint_step_)
                                                      : std::string("no earlier checkpoint exists");
            fail("train", "cannot write the checkpoint of step {}: {}; {}", step_, e.what(), kept);
        }
    });
    checkpoint_step_ = step_;
    checkpoint_pending_ = false;
    last_checkpoint_clock_ = now_seconds();
}

void Trainer::write_checkpoint_folder(const fs::path& tmp, const Rng::State& rs) {
    save_model_folder(*model_, tmp, {{"step", std::to_string(step_)}});
    SafetensorsWriter opt;
    const Shape shape{static_cast<int64_t>(model_->num_params())};
    opt.add("m", optimizer_->first_moment().data(), shape);
    opt.add("v", optimizer_->second_moment().data(), shape);
    opt.set_metadata("step", std::to_string(step_));
    opt.write(tmp / "optimizer.safetensors");
    nlohmann::json state = {{"step", step_},
                            {"train_config", config_.to_json()},
                            {"threads", num_threads()},
                            {"ranks", options_.ranks.size()},
                            {"train_seconds", train_seconds_},
                            {"run_seconds", run_seconds()},
                            {"sampler_rng", {{"s", {rs.s[0], rs.s[1], rs.s[2], rs.s[3]}},
                                             {"spare", rs.spare},
                                             {"has_spare", rs.has_spare}}},
                            {"corpus", {{"files", corpus_.files.size()}, {"bytes", corpus_.total_bytes()}}},
                            {"divergence_history", divergence_.to_json()}};
    write_file_atomic(tmp / kStateFile, state.dump(2) + "\n");
}

void Trainer::save_snapshot(long step) {
    if (!options_.ranks.is_root()) return;
    const fs::path dir = out_ / "checkpoints" / fmt::format("step_{:06d}", step);
    const fs::path tmp = dir.string() + ".tmp";
    std::error_code ec;
    fs::remove_all(tmp, ec);
    save_model_folder(*model_, tmp, {{"step", std::to_string(step)}});
    replace_directory(tmp, dir);
}

double Trainer::run_seconds() const { return run_seconds_ + (now_seconds() - run_clock_start_); }

TrainResult Trainer::stop_diverged(const std::string& reason, long step, Progress& progress) {
    append_log({{"step", step}, {"diverged", true}, {"reason", reason}});
    progress.stop(fmt::format("step {}: {}  diverged", step, reason));
    const double tps = train_seconds_ > 0 ? step_ * static_cast<double>(config_.batch) * config_.seq_len / train_seconds_ : 0.0;
    TrainResult result{step, 0.0, 0.0, tps, out_, reason};
    result.last_good_step = checkpoint_step_;
    return result;
}

TrainResult Trainer::run() {
    const TrainConfig& c = config_;
    const Communicator& ranks = options_.ranks;
    run_clock_start_ = last_checkpoint_clock_ = now_seconds();
    // Fault injection for the resume tests (TrainOptions::kill_after_step, kill_rank).
    auto kill_if_asked = [&] {
        if (options_.kill_after_step == step_ && (options_.kill_rank < 0 || options_.kill_rank == ranks.rank()))
            ::kill(::getpid(), SIGKILL);
    };
    auto wants_snapshot = [&](long s) { return std::find(c.save_at.begin(), c.save_at.end(), s) != c.save_at.end(); };
    if (step_ == 0) {
        append_log({{"event", "start"}, {"step", 0}, {"params", model_->num_params()}, {"config", c.to_json()}});
        if (wants_snapshot(0)) save_snapshot(0);
        kill_if_asked();
        checkpoint_pending_ = true;  // the initial state, once step 1 has shown its loss: something to fall back to
    }
    if (c.steps == 0) {  // the initialised model, e.g. for probing untrained weights: no full evaluation
        Evaluation ev = evaluate(c.eval_windows);
        nlohmann::json line = ev.to_json();
        line["final"] = true;
        line["tokens_per_s"] = 0.0;
        append_log(line);
        save_checkpoint(sampler_->rng().state());
        return {0, ev.val_loss, ev.sink1, 0.0, out_, ""};
    }
    const long tokens_per_step = static_cast<long>(c.batch) * c.seq_len;
    // With a time budget the bar's ETA (from the steps) can overshoot; say when the budget ends.
    auto budget_left = [&]() -> std::string {
        if (c.max_minutes <= 0) return "";
        return fmt::format("  time budget left {}", format_duration(std::max(0.0, c.max_minutes * 60.0 - run_seconds())));
    };
    Progress progress("train", c.steps, options_.progress && ranks.is_root());
    progress.update(step_);
    double window_start = now_seconds();
    long window_steps = 0;
    double recent_tps = 0.0;
    // Time in the gradients' all-reduce (data parallel), per step of the log period and of the run.
    auto allreduce_seconds = [&] { return average_ ? average_->seconds() : 0.0; };
    const double allreduce_at_start = allreduce_seconds();
    const long step_at_start = step_;
    double window_allreduce = allreduce_at_start;
    while (step_ < c.steps) {
        const double t0 = now_seconds();
        checkpoint_seconds_in_step_ = 0.0;
        const std::string diverged = train_step();
        const double dt = now_seconds() - t0 - checkpoint_seconds_in_step_;
        train_seconds_ += dt;
        // Nothing of a diverged step is saved: the checkpoint keeps the last state known to be good.
        if (!diverged.empty()) return stop_diverged(diverged, step_ + 1, progress);
        ++window_steps;
        if (step_ % c.log_every == 0 || step_ == c.steps) {
            const double elapsed = now_seconds() - window_start;
            recent_tps = elapsed > 0 ? window_steps * tokens_per_step / elapsed : 0.0;
            nlohmann::json line = {{"step", step_},
                                   {"loss", last_loss_},
                                   {"lr", learning_rate_at(step_, c.warmup, c.steps, c.lr, c.min_lr)},
                                   {"grad_norm", last_grad_norm_},
                                   {"tokens_per_s", recent_tps}};
            if (average_) line["allreduce_ms"] = 1e3 * (allreduce_seconds() - window_allreduce) / window_steps;
            append_log(line);
            window_start = now_seconds();
            window_steps = 0;
            window_allreduce = allreduce_seconds();
        }
        if (wants_snapshot(step_)) save_snapshot(step_);
        const bool eval_now = c.eval_every > 0 && step_ % c.eval_every == 0 && step_ < c.steps;
        if (eval_now) {
            Evaluation ev = evaluate(c.eval_windows);
            append_log(ev.to_json());
            check_ranks_agree(false);
            progress.update(step_, fmt::format("loss {:.3f}  val {:.3f}  Sink_1 {:.1f}%  {:.0f} tok/s{}", last_loss_,
                                               ev.val_loss, ev.sink1, recent_tps, budget_left()));
        } else {
            progress.update(step_, fmt::format("loss {:.3f}  {:.0f} tok/s{}", last_loss_, recent_tps, budget_left()));
        }
        // Rank 0's clock decides for every rank (checkpoint-minutes, max-minutes), so that they
        // checkpoint and stop after the same step.
        if (step_ < c.steps && ranks.broadcast(checkpoint_due_now())) checkpoint_pending_ = true;
        kill_if_asked();
        if (c.max_minutes > 0 && step_ < c.steps && ranks.broadcast(run_seconds() >= c.max_minutes * 60.0)) break;
    }
    const bool out_of_time = step_ < c.steps;
    Evaluation final_eval = evaluate(0);
    // The last update is judged by the final evaluation before it becomes the checkpoint.
    if (!std::isfinite(final_eval.val_loss))
        return stop_diverged(fmt::format("validation loss is {}", final_eval.val_loss), step_, progress);
    const double tps = train_seconds_ > 0 ? step_ * tokens_per_step / train_seconds_ : 0.0;
    nlohmann::json line = final_eval.to_json();
    line["final"] = true;
    line["tokens_per_s"] = tps;
    if (average_ && step_ > step_at_start)
        line["allreduce_ms"] = 1e3 * (allreduce_seconds() - allreduce_at_start) / (step_ - step_at_start);
    if (out_of_time) line["stopped"] = fmt::format("max-minutes {:g} reached after {} of {} steps", c.max_minutes, step_, c.steps);
    append_log(line);
    save_checkpoint(sampler_->rng().state());
    progress.finish(fmt::format("{}val loss {:.4f}  Sink_1 {:.1f}%  {:.0f} tok/s",
                                out_of_time ? fmt::format("time budget reached at step {}  ", step_) : "",
                                final_eval.val_loss, final_eval.sink1, tps));
    return {step_, final_eval.val_loss, final_eval.sink1, tps, out_, ""};
}

}  // namespace sinklab
