#!/usr/bin/env bash
# Fuzzes every parser: builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan) in
# build-fuzz/, seeds each from tests/fixtures and its saved inputs (tests/fuzz/regressions/<name>/),
# and runs each for SECONDS (default 60). Stops at nothing: every target runs, then the script
# prints executions per target and exits non-zero if any target found a crash, a leak, an
# out-of-memory (more than 2 GB), a timeout (one input over 10 s) or an exception other than
# sinklab::Error. Findings are written to build-fuzz/fuzz-findings/<name>/; a finding, once fixed,
# goes into tests/fuzz/regressions/<name>/ so that ctest replays it in every build.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 300, scripts/fuzz.sh 30 tiktoken
# Environment: SINKLAB_FUZZ_BUILD (default <repo>/build-fuzz), SINKLAB_FUZZ_JOBS (build jobs, default nproc).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-60}
shift || true
build=${SINKLAB_FUZZ_BUILD:-$root/build-fuzz}
jobs=${SINKLAB_FUZZ_JOBS:-$(nproc)}

if ! command -v clang++-14 >/dev/null 2>&1; then
  echo "[fuzz] clang++-14 is missing: run scripts/setup.sh (packages clang-14, libclang-rt-14-dev)" >&2
  exit 1
fi
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DSINKLAB_FUZZ=ON -DSINKLAB_BENCH=OFF >/dev/null || exit 1
fi
cmake --build "$build" -j"$jobs" --target fuzz_targets || exit 1

if [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer; fi

fixtures=$root/tests/fixtures
separator=$'\n--sinklab-fuzz-next-file--\n'

# A byte-level tokenizer.json from GPT-2's vocab.json and its first merges (JSON strings escaped).
gpt2_tokenizer_json() {
  printf '{"model": {"type": "BPE", "vocab": '
  cat "$fixtures/tokenizers/gpt2/vocab.json"
  printf ', "merges": ['
  sed -n '2,400p' "$fixtures/tokenizers/gpt2/merges.txt" | sed 's/\\/\\\\/g; s/"/\\"/g; s/.*/"&"/' | paste -sd, -
  printf ']}, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false}, "decoder": {"type": "ByteLevel"}}'
}

# The seed corpus of a target: its saved inputs, and what tests/fixtures has of its format.
seed() {
  local name=$1 dir=$2
  mkdir -p "$dir"
  cp "$root/tests/fuzz/regressions/$name"/* "$dir"/ 2>/dev/null
  case $name in
    safetensors)
      cp "$fixtures/hf/llama_bf16/model.safetensors" "$dir/llama_bf16.safetensors"
      cp "$fixtures/hf/gpt2/model.safetensors" "$dir/gpt2.safetensors" ;;
    model_config)
      for config in "$fixtures"/hf/*/config.json; do
        cp "$config" "$dir/$(basename "$(dirname "$config")").json"
        { cat "$config"; printf '%s' "$separator"; cat "$root/tests/fuzz/regressions/safetensors/tiny-f32.safetensors"; } \
          > "$dir/$(basename "$(dirname "$config")")-with-weights"
      done ;;
    train_config) cp "$root"/sweeps/*.toml "$dir"/ ;;
    sweep) cp "$root"/sweeps/*.toml "$dir"/ ;;
    llama2c_model) cp "$fixtures/llama2c/stories260K.bin" "$dir"/ ;;
    llama2c_tokenizer) cp "$fixtures/llama2c/tok512.bin" "$dir"/ ;;
    tokenizer_json) gpt2_tokenizer_json > "$dir/gpt2-tokenizer.json" ;;
    vocab_merges)
      { cat "$fixtures/tokenizers/gpt2/vocab.json"; printf '%s' "$separator"; head -n 400 "$fixtures/tokenizers/gpt2/merges.txt"; } \
        > "$dir/gpt2-400-merges" ;;
    tiktoken)
      head -n 1000 "$fixtures/tokenizers/cl100k_base.tiktoken" > "$dir/cl100k-1000"
      { head -n 1000 "$fixtures/tokenizers/cl100k_base.tiktoken"; printf '%s' "$separator"; cat "$fixtures/tokenizers/cl100k_base.json"; } \
        > "$dir/cl100k-1000-with-rules" ;;
    sentencepiece)
      # A small SentencePiece BPE model, and Llama 3's layout of a tiktoken rank file under the same name.
      spm_model "$dir/spm-bpe.model"
      head -n 1000 "$fixtures/tokenizers/cl100k_base.tiktoken" > "$dir/tiktoken-layout.model" ;;
    xlmr_sentencepiece)
      spm_model "$dir/spm-bpe.model" ;;
    wordpiece)
      local bert=$fixtures/hf-encoders/bert
      cp "$bert/vocab.txt" "$dir/bert-vocab.txt"
      { cat "$bert/vocab.txt"; printf '%s' "$separator"; cat "$bert/tokenizer_config.json"; } > "$dir/bert-with-config" ;;
    gpt_oss)
      # The fixture's config (its 288 KB of weights exceed -max_len; the saved tiny folder has both).
      cp "$fixtures/gpt_oss/config.json" "$dir/fixture-config.json" ;;
  esac
}

# A small SentencePiece BPE model trained here (Debian's spm_train), written to $1.
spm_model() {
  command -v spm_train >/dev/null 2>&1 || return 0
  local text=$build/fuzz-spm-text.txt
  for i in $(seq 1 200); do echo "the cat saw a red ball $i, and the dog found the big tree"; done > "$text"
  spm_train --input="$text" --model_prefix="$build/fuzz-spm" --vocab_size=300 --model_type=bpe \
    --byte_fallback=true --character_coverage=1.0 --normalization_rule_name=identity >/dev/null 2>&1 &&
    cp "$build/fuzz-spm.model" "$1"
}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for program in "$build"/tests/fuzz/fuzz_*; do
    name=$(basename "$program")
    case $name in *_regression) continue ;; esac
    targets+=("${name#fuzz_}")
  done
fi

failed=()
summary=()
for name in "${targets[@]}"; do
  program=$build/tests/fuzz/fuzz_$name
  corpus=$build/fuzz-corpus/$name
  findings=$build/fuzz-findings/$name
  seed "$name" "$corpus"
  mkdir -p "$findings"
  log=$build/fuzz-logs/$name.log
  mkdir -p "$(dirname "$log")"
  echo "[fuzz] $name: ${seconds}s from $(ls "$corpus" | wc -l) inputs" >&2
  # One process, one thread: the machine is shared. The limits make an allocation of more than
  # 2 GB, and an input running over 10 s, a finding.
  OMP_NUM_THREADS=1 "$program" "$corpus" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 \
    -timeout=10 -max_len=65536 -dict="$root/tests/fuzz/sinklab.dict" -artifact_prefix="$findings/" \
    -print_final_stats=1 >"$log" 2>&1
  status=$?
  executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  if [ $status -ne 0 ]; then
    failed+=("$name")
    summary+=("$(printf '%-18s %12s executions  FAILED (exit %d): see %s' "$name" "${executions:-?}" "$status" "$log")")
  else
    summary+=("$(printf '%-18s %12s executions  %6s coverage points  ok' "$name" "${executions:-?}" "${coverage:-?}")")
  fi
done

echo "[fuzz] ${seconds}s per target:"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "[fuzz] findings in: ${failed[*]} (inputs in $build/fuzz-findings/)" >&2
  exit 1
fi
