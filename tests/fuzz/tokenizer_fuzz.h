#pragma once
// What every tokenizer target does with a tokenizer that loaded: encode a text that has a bit of
// everything (ASCII, multi-byte UTF-8, a special token's spelling, a stray continuation byte), then
// decode the ids and look every id up; an encoder's tokenizer also frames the ids as a sentence pair.
#include <memory>

#include "fuzz_support.h"
#include "tokenizer/tokenizer.h"

namespace sinklab::fuzz {

inline void exercise(const std::unique_ptr<Tokenizer>& tokenizer) {
    static const std::string kText =
        "Hello world, \xC3\xBC\x6E\xC3\xAF\x63\xC3\xB6\x64\xC3\xA9 123 <|endoftext|> <s>\x80!";
    const std::vector<int32_t> ids = tokenizer->encode(kText);
    tokenizer->encode_ordinary(kText);
    tokenizer->decode(ids);
    for (int32_t id : ids) tokenizer->token_text(id);
    tokenizer->token_id("<|endoftext|>");
    if (tokenizer->framing != SequenceFraming::none) tokenizer->decode(frame_sequence(*tokenizer, ids, ids).ids);
    expect_clear_refusal_or_success([&] { tokenizer->decode(std::vector<int32_t>{-1}); });
    expect_clear_refusal_or_success([&] {
        tokenizer->decode(std::vector<int32_t>{static_cast<int32_t>(tokenizer->vocab_size())});
    });
}

}  // namespace sinklab::fuzz
