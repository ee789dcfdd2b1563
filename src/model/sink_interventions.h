#pragma once
// The ways to take a model's sink away (issue 20, docs/perturb.md), as `sinklab perturb
// --without-sink` and `sinklab probe --intervene` name them. Two edit the attention of every layer
// (mask-first, scale-first: data of the mask, AttentionMask::first_keys, that every kernel reads),
// one edits the design (mask-slot: the slot column or sink token removed, the rest of the weights
// kept), two edit the input (drop-bos, replace-first), which the caller applies to its tokens.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/transformer.h"

namespace sinklab {

enum class SinkInterventionKind {
    mask_first,     // mask-first:K  no query after the first K keys may attend to them
    scale_first,    // scale-first:F the first key's weight f(s) multiplied by F, rows renormalised
    replace_first,  // replace-first:ID another token at position 1
    mask_slot,      // mask-slot     the slot column (kv_bias, k_bias, softmax1, score_bias) or sink token removed
    drop_bos,       // drop-bos      the fixed first token (BOS) left out of every sequence
};

struct SinkIntervention {
    SinkInterventionKind kind = SinkInterventionKind::mask_first;
    int count = 1;        // K of mask-first
    float factor = 1.0f;  // F of scale-first
    int64_t token = 0;    // ID of replace-first (checked against a vocabulary by the caller)

    // "mask-first:K" (K >= 1), "scale-first:F" (F finite, >= 0), "replace-first:ID", "mask-slot",
    // "drop-bos", limited to `allowed`; errors name `flag` and list the allowed forms.
    static SinkIntervention parse(const std::string& text, const std::string& flag,
                                  const std::vector<SinkInterventionKind>& allowed);
    std::string name() const;  // the text parse() reads back

    // The attention edit of mask-first and scale-first (none for the others). scale-first:0 hides
    // the first key like mask-first:1 (query 1, which sees nothing else, keeps its row).
    FirstKeyEdit first_key_edit() const;
};

// Whether the design has something mask-slot removes: a slot column or a prepended sink token.
bool has_removable_slot(const AttentionSpec& spec);

// The design with its slot column and sink token removed (kv_bias, k_bias, softmax1, score_bias ->
// softmax; sink_token -> softmax; the gate, value bias and a learnable sigmoid bias stay).
AttentionSpec without_slot(const AttentionSpec& spec);

// A copy of `model` whose design has no slot (without_slot): every other parameter is copied; the
// slot's k*, v*, logit or the sink token's embedding are left out. A sink_token model's tokens then
// sit at positions 0..T-1 (with the sink they sat at 1..T). Throws, naming the design, for a model
// without a slot.
std::unique_ptr<Transformer> copy_without_slot(const Transformer& model);

}  // namespace sinklab
