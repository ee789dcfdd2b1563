# The layers of src/ (docs/architecture.md): each folder and the folders it may use directly. A
# folder may include and link what these rows reach, transitively, and nothing else: dependencies
# point downward only. CMakeLists.txt refuses a library that links outside its row, and the ctest
# test Layers.IncludesPointDownward (cmake/check_layers.cmake) fails on an #include that does. A new
# folder of src/ needs its row here; docs/architecture.md says which layer it belongs to.
set(SINKLAB_LAYER_core "")
set(SINKLAB_LAYER_ops core)
set(SINKLAB_LAYER_io core)
set(SINKLAB_LAYER_tokenizer core)
set(SINKLAB_LAYER_distributed core)  # the ranks of an MPI job (data-parallel training, sweeps)
set(SINKLAB_LAYER_analysis core)
set(SINKLAB_LAYER_report core)
set(SINKLAB_LAYER_attention ops)
set(SINKLAB_LAYER_metrics attention)  # reads the attention spec (how each design's weights are read)
set(SINKLAB_LAYER_model attention metrics io tokenizer)
set(SINKLAB_LAYER_train model distributed)
set(SINKLAB_LAYER_probe model report)
set(SINKLAB_LAYER_stream model)
set(SINKLAB_LAYER_perturb model)
set(SINKLAB_LAYER_lab train probe stream perturb analysis report)
set(SINKLAB_LAYER_cli lab)

# sinklab_layer_closure(<folder> <out-var>): every folder <folder> may use, directly or through others.
function(sinklab_layer_closure folder out)
  set(reached "")
  set(queue ${SINKLAB_LAYER_${folder}})
  while(queue)
    list(POP_FRONT queue next)
    if(NOT next IN_LIST reached)
      list(APPEND reached ${next})
      list(APPEND queue ${SINKLAB_LAYER_${next}})
    endif()
  endwhile()
  set(${out} ${reached} PARENT_SCOPE)
endfunction()
