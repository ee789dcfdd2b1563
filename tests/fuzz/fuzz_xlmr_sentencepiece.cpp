// XLM-RoBERTa's tokenizer: a SentencePiece model under the name sentencepiece.bpe.model (fairseq's
// ids: <s> <pad> </s> <unk>, the pieces shifted by one, <mask> last) and an optional
// tokenizer_config.json, as load_tokenizer finds them in a model folder. A tokenizer that loads
// also frames a sentence pair (<s> A </s></s> B </s>).
#include "tokenizer_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sinklab;
    const auto folder = fuzz::write_input_files(data, size, {"sentencepiece.bpe.model", "tokenizer_config.json"});
    fuzz::expect_clear_refusal_or_success([&] { fuzz::exercise(load_tokenizer(folder)); });
    return 0;
}
