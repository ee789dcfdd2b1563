#pragma once
// The training step the throughput benchmarks time (bench/train_throughput.cpp,
// bench/attention_designs.cpp): a batch from the sampler and the trainer's optimizer_step (forward,
// backward, clipping, AdamW) on a model initialised from the config, with the schedule of a
// 1000-step run and nothing written to disk.
#include <cstdint>
#include <vector>

#include "model/transformer.h"
#include "train/adamw.h"
#include "train/data.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace sinklab::bench {

class TrainingSteps {
public:
    TrainingSteps(const TrainConfig& c, const ByteCorpus& corpus)
        : c_(c),
          model_(c.model),
          opt_(model_, AdamWOptions{c.beta1, c.beta2, c.adam_eps, c.wd, false}),
          sampler_(corpus.train, c.batch, c.seq_len, false, c.seed),
          tokens_(static_cast<size_t>(c.batch) * c.seq_len),
          targets_(tokens_.size()) {
        model_.init_weights(c.seed);
    }

    // Step s (from 1); returns its training loss.
    double step(long s) {
        sampler_.next(tokens_.data(), targets_.data());
        const float lr = learning_rate_at(s, c_.warmup, 1000, c_.lr, c_.min_lr);
        return optimizer_step(model_, opt_, tokens_.data(), targets_.data(), c_.batch, c_.seq_len, lr, c_.clip, s)
            .loss;
    }

    const Transformer& model() const { return model_; }

private:
    TrainConfig c_;
    Transformer model_;
    AdamW opt_;
    BatchSampler sampler_;
    std::vector<int32_t> tokens_, targets_;
};

}  // namespace sinklab::bench
