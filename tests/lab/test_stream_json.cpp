// The stream JSON that `sinklab report` reads back (lab/stream_run.h): a file that is not one, or one
// with a key missing or of another type, gets one line naming what is wrong, never a JSON library
// exception (which main could only call an unexpected failure).
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "lab/stream_run.h"

namespace sinklab {
namespace {

nlohmann::json one_policy_stream() {
    return nlohmann::json::parse(R"({
        "command": "stream", "model": {"path": "run", "positions": "learned", "attention": "softmax"},
        "data": {"source": "text.txt", "predictions": 3, "overlap": "none"},
        "policies": [{"policy": "window:8", "nll": [1.0, 2.0, 3.0],
                      "samples": [{"ppl_recent": 7.0}],
                      "summary": {"tokens": 3, "ppl": 7.389, "tokens_per_s": 100.0, "cache_bytes": 4096,
                                  "peak_rss_bytes": 1048576, "stopped": null}}]})");
}

std::string error_of(const nlohmann::json& j) {
    try {
        stream_figure(j);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(StreamJson, AWrittenStreamDrawsAndTabulates) {
    const nlohmann::json j = one_policy_stream();
    EXPECT_TRUE(is_stream_json(j));
    const StreamFigure f = stream_figure(j);
    ASSERT_EQ(f.curves.size(), 1u);
    EXPECT_EQ(f.curves[0].y, (std::vector<double>{1.0, 2.0, 3.0}));
    EXPECT_EQ(stream_table(j).rows().size(), 1u);
}

TEST(StreamJson, OtherJsonIsRecognisedWithoutThrowing) {
    for (const char* text : {R"({"command": 1, "policies": []})", R"({"command": "stream", "policies": 3})", "[1]",
                             R"({"policies": []})", "null"}) {
        const nlohmann::json j = nlohmann::json::parse(text);
        EXPECT_FALSE(is_stream_json(j)) << text;
        EXPECT_NE(error_of(j).find("not the JSON of `sinklab stream`"), std::string::npos) << text;
    }
}

TEST(StreamJson, AMissingOrMistypedKeyIsOneClearError) {
    nlohmann::json no_model = one_policy_stream();
    no_model.erase("model");
    EXPECT_NE(error_of(no_model).find("not the JSON of `sinklab stream` as it writes it"), std::string::npos);
    nlohmann::json text_nll = one_policy_stream();
    text_nll["policies"][0]["nll"] = "many";
    EXPECT_NE(error_of(text_nll).find("not the JSON of `sinklab stream` as it writes it"), std::string::npos);
    nlohmann::json text_predictions = one_policy_stream();
    text_predictions["data"]["predictions"] = "three";
    EXPECT_NE(error_of(text_predictions).find("as it writes it"), std::string::npos);
    nlohmann::json no_summary = one_policy_stream();
    no_summary["policies"][0].erase("summary");
    try {
        stream_table(no_summary);
        ADD_FAILURE() << "stream_table accepted a policy without a summary";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("summary"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace sinklab
