// The probe's sink interventions (issue 20): what each does to the loss and to Sink_k, on models
// whose answers are known: the identity edits change nothing, mask-first:1 takes a first-token
// sink away entirely, mask-slot removes a slot, and each bad request is one clear error.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "probe/probe.h"
#include "probe_test_models.h"

namespace sinklab {
namespace {

ProbeSamples natural_windows(int vocab, int T, int N, std::optional<int32_t> bos = std::nullopt) {
    const ProbeSamples ids = random_samples(vocab - (bos ? 1 : 0), N * (T + 1), 1, std::nullopt, 4);
    return natural_samples(ids.tokens, T, N, bos, "ids");
}

ProbeResult probe_with(Transformer& model, const ProbeSamples& samples, const std::string& intervention) {
    ProbeOptions options;
    options.metrics = {Metric::sink};
    options.positions = 3;
    options.intervention = parse_intervention(intervention);
    return run_probe(model, samples, options);
}

TEST(ProbeSinkIntervention, IdentityEditsChangeNothing) {
    auto model = test::random_model(test::small_config(PositionKind::rope));
    const ProbeSamples samples = natural_windows(model->config().vocab_size, 32, 3, 63);
    for (const char* identity : {"scale-first:1", "replace-first:63"}) {  // 63: the BOS the samples start with
        SCOPED_TRACE(identity);
        const ProbeResult r = probe_with(*model, samples, identity);
        ASSERT_TRUE(r.intervention);
        EXPECT_EQ(r.intervention->name, identity);
        EXPECT_EQ(r.intervention->loss_intervened, r.intervention->loss_clean);
        EXPECT_EQ(r.intervention->sink_percent_intervened, r.sink_percent);
    }
    const ProbeResult scaled = probe_with(*model, samples, "scale-first:0.01");
    EXPECT_NE(scaled.intervention->loss_intervened, scaled.intervention->loss_clean);
}

TEST(ProbeSinkIntervention, MaskFirstTakesTheFirstTokenSinkAway) {
    auto model = test::token_one_sink_model();
    const ProbeSamples samples = natural_windows(model->config().vocab_size, 32, 4);
    const ProbeResult r = probe_with(*model, samples, "mask-first:1");
    EXPECT_EQ(r.sink_percent[0], 100.0);
    EXPECT_EQ(r.intervention->sink_percent_intervened[0], 0.0);
    // scale-first:0 is the same edit
    const ProbeResult zero = probe_with(*model, samples, "scale-first:0");
    EXPECT_EQ(zero.intervention->sink_percent_intervened, r.intervention->sink_percent_intervened);
    EXPECT_EQ(zero.intervention->loss_intervened, r.intervention->loss_intervened);
}

TEST(ProbeSinkIntervention, MaskSlotRemovesTheSlot) {
    ModelConfig c = test::small_config(PositionKind::rope);
    c.attention = AttentionSpec::parse("kv_bias");
    auto model = test::random_model(c);
    const ProbeSamples samples = natural_windows(c.vocab_size, 32, 3);
    const ProbeResult r = probe_with(*model, samples, "mask-slot");
    ASSERT_TRUE(r.sink_star);
    EXPECT_FALSE(r.intervention->sink_star_intervened);  // no slot left to measure
    EXPECT_NE(r.intervention->loss_intervened, r.intervention->loss_clean);
}

TEST(ProbeSinkIntervention, BadRequestsAreClearErrors) {
    auto model = test::random_model(test::small_config(PositionKind::rope));
    const ProbeSamples samples = natural_windows(model->config().vocab_size, 16, 2);
    EXPECT_THROW(parse_intervention("mask-first:0"), Error);
    EXPECT_THROW(parse_intervention("scale-first:-0.5"), Error);
    EXPECT_THROW(parse_intervention("drop-bos"), Error);  // a perturb mode, not a probe intervention
    EXPECT_THROW(probe_with(*model, samples, "mask-slot"), Error);          // softmax has no slot
    EXPECT_THROW(probe_with(*model, samples, "replace-first:64"), Error);   // outside the vocabulary
    EXPECT_THROW(probe_with(*model, samples, "mask-first:16"), Error);      // every key hidden
    const ProbeSamples random = random_samples(model->config().vocab_size, 16, 2, std::nullopt, 2);
    EXPECT_THROW(probe_with(*model, random, "mask-first:1"), Error);       // no targets: no loss
}

}  // namespace
}  // namespace sinklab
