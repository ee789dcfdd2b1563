#pragma once
// Filling a Transformer's parameters from a checkpoint's named tensors, strictly: every tensor is
// checked against the shape the configuration implies and must be stored as F32, F16 or BF16
// (converted to float32 on load); every parameter must be filled exactly once, and every tensor of
// the checkpoint must be used or explicitly skipped, so a config that disagrees with its weights
// fails with the tensor's and the file's names instead of loading a half-filled model.
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

    // Parameter `param` is tensor `name`, with the same shape.
    void copy(const std::string& name, const std::string& param);
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

    const CheckpointTensors& source_;
    Transformer& model_;
    std::string dtype_note_;
    std::set<std::string> used_, filled_;
    std::set<std::string> dtypes_seen_;
};

}  // namespace sinklab
