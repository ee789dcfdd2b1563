#pragma once
// Filling a Transformer's parameters from a checkpoint's named tensors, strictly: every tensor is
// checked against the shape the configuration implies and must be stored as F32, F16 or BF16
// (converted to float32 on load), or as MXFP4 blocks and scales (U8) for the quantized weights, which
// stay quantized; every parameter must be filled exactly once, and every tensor of the checkpoint
// must be used or explicitly skipped, so a config that disagrees with its weights fails with the
// tensor's and the file's names instead of loading a half-filled model. Each tensor is read once,
// straight into the model where it can be, and released (its file pages leave the process).
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"
#include "model/transformer.h"

namespace sinklab {

// The named tensors of a checkpoint, whatever its file format.
class CheckpointTensors {
public:
    virtual ~CheckpointTensors() = default;
    virtual std::vector<std::string> names() const = 0;  // sorted
    virtual bool contains(const std::string& name) const = 0;
    virtual DType dtype(const std::string& name) const = 0;
    virtual Shape shape(const std::string& name) const = 0;
    // Converted to float32 after checking the shape.
    virtual Tensor read_f32(const std::string& name, const Shape& expected_shape) const = 0;
    // The same into `out` (the shape's element count of floats).
    virtual void read_f32_into(const std::string& name, const Shape& expected_shape, float* out) const = 0;
    // The stored bytes, valid while the checkpoint is open; null for tensors held converted.
    virtual const std::byte* raw(const std::string& name) const = 0;
    // Done with the tensor: a file's pages leave the process's resident memory.
    virtual void release(const std::string& name) const {}
    // The file holding the tensor, for messages.
    virtual std::string file_of(const std::string& name) const = 0;
    // What the tensors came from (a file or a folder), for messages.
    virtual std::string origin() const = 0;
};

// A Hugging Face folder's safetensors weights (one file or shards), memory-mapped.
std::unique_ptr<CheckpointTensors> open_safetensors_checkpoint(const std::filesystem::path& folder);
// Tensors already in memory (a converted llama2.c file); `origin` names the file they came from.
std::unique_ptr<CheckpointTensors> in_memory_checkpoint(std::map<std::string, Tensor> tensors, std::string origin);

class WeightLoader {
public:
    // `allowed_dtype_note` is added to dtype errors (e.g. "config.json torch_dtype: bfloat16").
    WeightLoader(const CheckpointTensors& source, Transformer& model, std::string allowed_dtype_note);

    const ModelConfig& config() const { return model_.config(); }
    bool has(const std::string& name) const { return source_.contains(name); }
    // The file or folder the tensors come from, for messages.
    std::string origin() const { return source_.origin(); }

    // Parameter `param` is tensor `name`, with the same shape.
    void copy(const std::string& name, const std::string& param);
    // Quantized weight `param` (Transformer::quantized, `count` matrices of rows x cols) is the MXFP4
    // pair `blocks` (count, rows, cols / 32, 16) and `scales` (count, rows, cols / 32), both U8, kept
    // as they are; row r of every matrix comes from row source_rows[r] (empty: row r). A missing
    // scale tensor, a shape other than the config's, a dtype other than U8 or a NaN scale (255)
    // fails naming the tensor.
    void copy_mxfp4(const std::string& blocks, const std::string& scales, const std::string& param,
                    const std::vector<int>& source_rows = {});
    // Tensor `name` stacks the rows of several parameters (a fused q/k/v or gate/up projection, or
    // their biases), in order.
    void split_rows(const std::string& name, const std::vector<std::string>& params);
    // Tensor `name` is stored transposed, [in, out] (GPT-2's Conv1D); its transpose stacks the
    // parameters' rows as split_rows does.
    void split_transposed(const std::string& name, const std::vector<std::string>& params);
    // For layouts the calls above do not cover: reads tensor `name` (checked like the others) and
    // marks it used; set() then fills a parameter with a value of its shape.
    Tensor take(const std::string& name, const Shape& expected_shape);
    void set(const std::string& param, const Tensor& value);
    // A tensor the model does not need (a tied head's copy, cached RoPE tables, mask buffers).
    void skip(const std::string& name);
    void skip_if_present(const std::string& name);

    // Checks that every parameter was filled and every tensor used or skipped.
    void finish() const;
    // The storage dtypes of the tensors read ("BF16", or "BF16+F32" when mixed).
    std::string storage_dtypes() const;

private:
    Shape param_shape(const std::string& param) const;
    // Marks tensor `name` used after checking that it exists, was not read before and is stored as
    // one of `allowed` (else the error adds `what_is_allowed`).
    void claim(const std::string& name, std::initializer_list<DType> allowed, const std::string& what_is_allowed);

    const CheckpointTensors& source_;
    Transformer& model_;
    std::string dtype_note_;
    std::set<std::string> used_, filled_, quantized_filled_;
    std::set<std::string> dtypes_seen_;
};

}  // namespace sinklab
