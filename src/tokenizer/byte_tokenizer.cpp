// The byte tokenizer: one id per byte, so any byte string (valid UTF-8 or not) round-trips.
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace sinklab {
namespace {

constexpr int32_t kByteCount = 256;
constexpr std::string_view kBosText = "<bos>";

class ByteTokenizer final : public Tokenizer {
public:
    explicit ByteTokenizer(bool with_bos) {
        if (with_bos) bos_id = kByteCount;
        add_bos_by_default = with_bos;
    }

    std::vector<int32_t> encode(std::string_view text) const override {
        std::vector<int32_t> ids(text.size());
        for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
        return ids;
    }

    std::string decode(std::span<const int32_t> ids) const override {
        std::string text;
        text.reserve(ids.size());
        for (int32_t id : ids) {
            check_id(id);
            if (id < kByteCount) text.push_back(static_cast<char>(id));
        }
        return text;
    }

    std::string token_text(int32_t id) const override {
        check_id(id);
        return id < kByteCount ? std::string(1, static_cast<char>(id)) : std::string(kBosText);
    }

    std::optional<int32_t> token_id(std::string_view text) const override {
        if (text.size() == 1) return static_cast<unsigned char>(text[0]);
        if (bos_id && text == kBosText) return bos_id;
        return std::nullopt;
    }

    int64_t vocab_size() const override { return bos_id ? kByteCount + 1 : kByteCount; }
    std::string kind() const override { return "bytes"; }

private:
    void check_id(int32_t id) const {
        SINKLAB_CHECK(id >= 0 && id < vocab_size(), "tokenizer",
                      "byte tokenizer: id {} is outside the vocabulary [0, {})", id, vocab_size());
    }
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer(bool with_bos) {
    return std::make_unique<ByteTokenizer>(with_bos);
}

}  // namespace sinklab
