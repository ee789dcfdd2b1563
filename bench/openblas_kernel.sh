# Sourced by the benchmark scripts: the OpenBLAS kernel both engines use, and one line that says it.
# OPENBLAS_KERNEL=avx512 unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (OpenBLAS then picks its
# AVX-512 kernels on a CPU that has them); the default keeps the environment's setting.
if [ "${OPENBLAS_KERNEL:-env}" = "avx512" ]; then unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; fi

# "OpenBLAS core type: ..., L2: ...; N cores", for a benchmark's header line.
openblas_setting() {
  echo "OpenBLAS core type: ${OPENBLAS_CORETYPE:-unset (auto)}, L2: ${OPENBLAS_L2_SIZE:-unset}; $(nproc) cores"
}
