// Corrupt, truncated and malicious safetensors files: each must be rejected when the file is
// opened, with a sinklab::Error that names the file and says what is wrong; none may crash.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "core/rng.h"
#include "io/safetensors.h"
#include "io_test_support.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

// Writes `bytes` to a file named `name` in `scratch` and expects opening it to fail with `phrase`.
void expect_file_rejected(const ScratchDir& scratch, const std::string& name, const std::string& bytes,
                          const std::string& phrase) {
    SCOPED_TRACE(name);
    const fs::path path = scratch / name;
    test::write_bytes(path, bytes);
    test::expect_rejected(path, phrase, [&] { SafetensorsFile file(path); });
}

// A one-tensor header with the given entry for tensor "w".
std::string header_with(const std::string& entry) { return R"({"w":)" + entry + "}"; }

TEST(SafetensorsHostile, ShortFiles) {
    ScratchDir scratch;
    expect_file_rejected(scratch, "empty.safetensors", "", "shorter than the 8-byte header length");
    expect_file_rejected(scratch, "seven.safetensors", std::string(7, '\x01'), "shorter than the 8-byte header length");
}

TEST(SafetensorsHostile, HeaderLengths) {
    ScratchDir scratch;
    expect_file_rejected(scratch, "too_long.safetensors", test::le_u64(100) + "{}", "larger than the file");
    expect_file_rejected(scratch, "too_long_hint.safetensors", test::le_u64(9) + "{}",
                         "Perhaps an incomplete download or corrupt file?");
    expect_file_rejected(scratch, "huge.safetensors", test::le_u64(uint64_t{1} << 62) + "{}", "is absurd");
    expect_file_rejected(scratch, "max.safetensors", test::le_u64(UINT64_MAX) + "{}", "is absurd");
    expect_file_rejected(scratch, "zero.safetensors", test::le_u64(0), "not valid JSON");
}

TEST(SafetensorsHostile, HeadersThatAreNotAnObjectOfEntries) {
    ScratchDir scratch;
    expect_file_rejected(scratch, "garbage.safetensors", test::safetensors_bytes("{\"w\": {dtype: F32", 0),
                         "not valid JSON");
    expect_file_rejected(scratch, "binary.safetensors", test::safetensors_bytes(std::string("\xff\xfe\0\1", 4), 0),
                         "not valid JSON");
    expect_file_rejected(scratch, "array.safetensors", test::safetensors_bytes("[1, 2, 3]", 0), "not an object");
    expect_file_rejected(scratch, "number.safetensors", test::safetensors_bytes("42", 0), "not an object");
    expect_file_rejected(scratch, "entry.safetensors", test::safetensors_bytes(header_with("[1]"), 0),
                         "not an object");
    expect_file_rejected(scratch, "nested.safetensors",
                         test::safetensors_bytes(std::string(100000, '[') + std::string(100000, ']'), 0),
                         "nests deeper than a safetensors header can");
    const std::string nested_shape = header_with(R"({"dtype":"F32","shape":[[1]],"data_offsets":[0,4]})");
    expect_file_rejected(scratch, "deep_shape.safetensors", test::safetensors_bytes(nested_shape, 4), "nests deeper");
    expect_file_rejected(
        scratch, "duplicate.safetensors",
        test::safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                8),
        "has the key 'w' twice");
}

TEST(SafetensorsHostile, BadEntries) {
    ScratchDir scratch;
    auto reject = [&](const std::string& name, const std::string& entry, size_t data_bytes, const std::string& phrase) {
        expect_file_rejected(scratch, name + ".safetensors", test::safetensors_bytes(header_with(entry), data_bytes),
                             phrase);
    };
    reject("no_dtype", R"({"shape":[1],"data_offsets":[0,4]})", 4, "tensor 'w' has no 'dtype'");
    reject("no_shape", R"({"dtype":"F32","data_offsets":[0,4]})", 4, "has no 'shape'");
    reject("no_offsets", R"({"dtype":"F32","shape":[1]})", 4, "has no 'data_offsets'");
    reject("unknown_dtype", R"({"dtype":"F8_E9","shape":[1],"data_offsets":[0,1]})", 1, "unknown dtype 'F8_E9'");
    reject("dtype_number", R"({"dtype":7,"shape":[1],"data_offsets":[0,4]})", 4, "dtype that is not a string");
    reject("negative_shape", R"({"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]})", 24, "negative dimension");
    reject("float_shape", R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})", 4, "not a list of non-negative");
    reject("shape_object", R"({"dtype":"F32","shape":{},"data_offsets":[0,4]})", 4, "shape that is not a list");
    reject("huge_shape", R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]})", 4,
           "too large to address");
    reject("descending", R"({"dtype":"F32","shape":[1],"data_offsets":[4,0]})", 4, "two ascending");
    reject("three_offsets", R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})", 8, "two ascending");
    reject("negative_offset", R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", 4, "two ascending");
    reject("string_offset", R"({"dtype":"F32","shape":[1],"data_offsets":["0","4"]})", 4, "two ascending");
    reject("size_mismatch", R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})", 24,
           "is F32 with shape [2, 3] (24 bytes) but its data_offsets [0, 20] span 20 bytes");
    reject("past_end", R"({"dtype":"F32","shape":[2],"data_offsets":[4,12]})", 8, "past the end of the data section");
    reject("huge_offsets",
           R"({"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615]})", 8,
           "past the end of the data section");
}

TEST(SafetensorsHostile, OverlappingTensors) {
    ScratchDir scratch;
    expect_file_rejected(scratch, "overlap.safetensors",
                         test::safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                                 12),
                         "tensors 'a' (bytes [0, 8)) and 'b' (bytes [4, 12)) overlap");
    // Listed out of order in the header, and one inside the other.
    expect_file_rejected(scratch, "nested_span.safetensors",
                         test::safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                                                 R"("b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                                                 16),
                         "overlap");
}

TEST(SafetensorsHostile, Metadata) {
    ScratchDir scratch;
    expect_file_rejected(scratch, "meta_number.safetensors",
                         test::safetensors_bytes(R"({"__metadata__":{"format":"pt","epoch":3}})", 0),
                         "__metadata__ value of 'epoch' is 3, expected a string");
    expect_file_rejected(scratch, "meta_list.safetensors", test::safetensors_bytes(R"({"__metadata__":["pt"]})", 0),
                         "__metadata__ is not an object");
}

TEST(SafetensorsHostile, TruncatedDataSection) {
    ScratchDir scratch;
    const std::string fixture =
        test::read_bytes(test::fixtures_dir() / "hf" / "llama" / "model.safetensors");
    expect_file_rejected(scratch, "truncated.safetensors", fixture.substr(0, fixture.size() - 100),
                         "Perhaps an incomplete download or corrupt file?");
}

TEST(SafetensorsHostile, AcceptedEdgeCases) {
    ScratchDir scratch;
    // Zero-sized tensors may share an offset with anything; gaps between tensors are harmless.
    const fs::path path = scratch / "edge.safetensors";
    test::write_bytes(path, test::safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                                    R"("e":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},)"
                                                    R"("g":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                                                    R"("__metadata__":{}})",
                                                    16));
    SafetensorsFile file(path);
    EXPECT_EQ(file.names(), (std::vector<std::string>{"a", "e", "g"}));
    EXPECT_TRUE(file.metadata().empty());
}

TEST(SafetensorsHostile, BoolOutsideZeroAndOne) {
    ScratchDir scratch;
    const fs::path path = scratch / "bool.safetensors";
    const std::string header = R"({"b":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})";
    test::write_bytes(path, test::le_u64(header.size()) + header + std::string("\x01\x02", 2));
    SafetensorsFile file(path);
    test::expect_rejected(path, "holds byte 2 at element 1", [&] { file.read_i64("b"); });
}

TEST(SafetensorsHostile, NotAFile) {
    ScratchDir scratch;
    test::expect_rejected(scratch / "absent.safetensors", "no such file",
                          [&] { SafetensorsFile file(scratch / "absent.safetensors"); });
    fs::create_directory(scratch / "folder.safetensors");
    test::expect_rejected(scratch / "folder.safetensors", "is a directory",
                          [&] { SafetensorsFile file(scratch / "folder.safetensors"); });
}

// Every prefix of a real file, and the file with random header bytes replaced: opening either
// succeeds (a mutation can leave the header valid) or throws sinklab::Error. Under the sanitizer
// build this shows that no malformed header reads out of bounds.
TEST(SafetensorsHostile, EveryPrefixAndRandomCorruptionsFailCleanly) {
    ScratchDir scratch;
    // The reference file is small and has metadata, I64 and F32 tensors.
    const std::string fixture = test::read_bytes(test::fixtures_dir() / "hf" / "gpt2" / "reference.safetensors");
    uint64_t header_size = 0;
    std::memcpy(&header_size, fixture.data(), 8);
    const fs::path path = scratch / "mutant.safetensors";
    auto open_or_error = [&](const std::string& bytes) {
        test::write_bytes(path, bytes);
        try {
            SafetensorsFile file(path);
            for (const std::string& name : file.names()) file.read_f32(name);
        } catch (const Error&) {
        }
    };
    for (size_t length = 0; length < 8 + header_size + 64; length += 7) open_or_error(fixture.substr(0, length));
    Rng rng(2024);
    for (int trial = 0; trial < 2000; ++trial) {
        std::string mutant = fixture;
        for (int flips = 1 + static_cast<int>(rng.below(3)); flips > 0; --flips)
            mutant[rng.below(8 + header_size)] = static_cast<char>(rng.below(256));
        open_or_error(mutant);
    }
}

}  // namespace
}  // namespace sinklab
