// The probe's inputs: flag parsing, windows of natural text with their targets, seeded random ids,
// repeated ids, BOS, and one clear error for each bad input.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "probe/probe.h"
#include "probe_test_models.h"
#include "tokenizer/tokenizer.h"

namespace sinklab {
namespace {

// The error message of `f`, or a test failure when it does not throw sinklab::Error.
template <typename F>
std::string error_of(F f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(ProbeInputs, ParsesEachKindAndReadsItsNameBack) {
    for (const char* text : {"natural", "natural:prompts.txt", "random", "repeat:17"}) {
        EXPECT_EQ(InputSpec::parse(text).name(), text);
    }
    EXPECT_FALSE(InputSpec::parse("repeat").repeat_id.has_value());  // default_repeat_id
    EXPECT_EQ(InputSpec::parse("natural:a:b.txt").file, "a:b.txt");
    EXPECT_TRUE(contains(error_of([] { InputSpec::parse("words"); }), "natural, natural:FILE, random"));
    EXPECT_TRUE(contains(error_of([] { InputSpec::parse("repeat:x"); }), "'x' is not a token id"));
    EXPECT_TRUE(contains(error_of([] { InputSpec::parse("random:3"); }), "takes no argument"));
    EXPECT_TRUE(contains(error_of([] { parse_bos_mode("yes"); }), "auto, on or off"));
}

// The default repeated id is an ordinary token: "the"'s first id, or the middle of a vocabulary
// without a tokenizer; never id 0 (a control byte, <unk> or <pad> in most vocabularies).
TEST(ProbeInputs, DefaultRepeatIdIsAnOrdinaryToken) {
    const auto bytes = make_byte_tokenizer(true);
    EXPECT_EQ(default_repeat_id(bytes.get(), 257), 't');
    EXPECT_EQ(default_repeat_id(nullptr, 512), 256);
    InputSpec repeat = InputSpec::parse("repeat");
    const ProbeSamples s = make_probe_samples(repeat, "", "", bytes.get(), 257, 4, 1, std::nullopt, 1);
    EXPECT_EQ(s.tokens, std::vector<int32_t>(4, 't'));
    EXPECT_TRUE(contains(s.description, "id 116")) << s.description;
}

TEST(ProbeInputs, NaturalWindowsWithAndWithoutBos) {
    std::vector<int32_t> ids(20);
    for (int i = 0; i < 20; ++i) ids[i] = 100 + i;
    // without BOS: 3 windows of T + 1 = 5 ids evenly spaced over 20 ids: offsets 0, 7, 15
    const ProbeSamples plain = natural_samples(ids, 4, 3, std::nullopt, "ids");
    EXPECT_EQ(plain.tokens, (std::vector<int32_t>{100, 101, 102, 103, 107, 108, 109, 110, 115, 116, 117, 118}));
    EXPECT_EQ(plain.targets, (std::vector<int32_t>{101, 102, 103, 104, 108, 109, 110, 111, 116, 117, 118, 119}));
    // with BOS: [BOS, x_0 .. x_2] predicts x_0 .. x_3
    const ProbeSamples bos = natural_samples(ids, 4, 1, 7, "ids");
    EXPECT_EQ(bos.tokens, (std::vector<int32_t>{7, 100, 101, 102}));
    EXPECT_EQ(bos.targets, (std::vector<int32_t>{100, 101, 102, 103}));
}

TEST(ProbeInputs, RandomIsSeededAndRepeatRepeats) {
    const ProbeSamples a = random_samples(50, 16, 3, std::nullopt, 9), b = random_samples(50, 16, 3, std::nullopt, 9);
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_NE(a.tokens, random_samples(50, 16, 3, std::nullopt, 10).tokens);
    for (int32_t id : a.tokens) EXPECT_TRUE(id >= 0 && id < 50);
    EXPECT_TRUE(a.targets.empty());
    const ProbeSamples r = repeat_samples(4, 50, 5, 2, 49);
    EXPECT_EQ(r.tokens, (std::vector<int32_t>{49, 4, 4, 4, 4, 49, 4, 4, 4, 4}));
}

TEST(ProbeInputs, BosFollowsTheModelUnlessForced) {
    EXPECT_EQ(resolve_bos(BosMode::automatic, 256, true, 257), 256);
    EXPECT_EQ(resolve_bos(BosMode::automatic, 1, false, 100), std::nullopt);
    EXPECT_EQ(resolve_bos(BosMode::on, 1, false, 100), 1);
    EXPECT_EQ(resolve_bos(BosMode::off, 256, true, 257), std::nullopt);
    EXPECT_TRUE(contains(error_of([] { resolve_bos(BosMode::on, std::nullopt, false, 256); }), "has no BOS token"));
}

// The bad inputs of the issue: one clear error each.
TEST(ProbeInputs, EmptyPromptFileIsAnError) {
    auto bytes = make_byte_tokenizer(false);
    const std::string message = error_of(
        [&] { make_probe_samples(InputSpec::parse("natural:empty.txt"), "", "empty.txt", bytes.get(), 256, 8, 2, {}, 0); });
    EXPECT_TRUE(contains(message, "empty.txt: the text is empty")) << message;
}

TEST(ProbeInputs, TextShorterThanOneWindowIsAnError) {
    auto bytes = make_byte_tokenizer(false);
    const std::string message = error_of(
        [&] { make_probe_samples(InputSpec::parse("natural:short.txt"), "abc", "short.txt", bytes.get(), 256, 8, 2, {}, 0); });
    EXPECT_TRUE(contains(message, "3 tokens, but one window of --seq-len 8 needs 9")) << message;
}

TEST(ProbeInputs, IdOutsideTheVocabularyIsAnError) {
    const std::string message = error_of([] { repeat_samples(300, 257, 8, 2, std::nullopt); });
    EXPECT_TRUE(contains(message, "--input repeat:300: the id is outside the vocabulary (0..256)")) << message;
    EXPECT_TRUE(contains(error_of([] { repeat_samples(-1, 257, 8, 2, std::nullopt); }), "outside the vocabulary"));
}

TEST(ProbeInputs, SequenceBeyondLearnedPositionsIsAnError) {
    const ModelConfig learned = test::small_config(PositionKind::learned, 128);
    EXPECT_NO_THROW(check_probe_seq_len(learned, 128));
    const std::string message = error_of([&] { check_probe_seq_len(learned, 129); });
    EXPECT_TRUE(contains(message, "--seq-len 129: this model has 128 positions (learned positions")) << message;
    // positions that are computed, not looked up, extrapolate: any length, with a note
    for (PositionKind pe : {PositionKind::none, PositionKind::rope, PositionKind::sinusoidal, PositionKind::alibi,
                            PositionKind::relative}) {
        const ModelConfig c = test::small_config(pe, 128);
        EXPECT_NO_THROW(check_probe_seq_len(c, 4096)) << to_string(pe);
        EXPECT_TRUE(contains(beyond_max_seq_len_note(c, 4096), "T = 4096 exceeds the model's max_seq_len 128"));
        EXPECT_EQ(beyond_max_seq_len_note(c, 128), "");
    }
}

TEST(ProbeInputs, UnknownMetricIsAnError) {
    EXPECT_EQ(parse_metrics("sink,massive").size(), 2u);
    EXPECT_EQ(parse_metrics("all"), all_metrics());
    const std::string message = error_of([] { parse_metrics("sink,sinkhole"); });
    EXPECT_TRUE(contains(message, "unknown metric 'sinkhole' (known: all, sink, entropy, massive")) << message;
}

TEST(ProbeInputs, NaturalInputNeedsATokenizer) {
    const std::string message = error_of(
        [] { make_probe_samples(InputSpec::parse("natural"), "some text", "text", nullptr, 256, 4, 1, {}, 0); });
    EXPECT_TRUE(contains(message, "needs a tokenizer and the model's folder has none: pass --tokenizer")) << message;
}

}  // namespace
}  // namespace sinklab
