#!/usr/bin/env bash
# The MXFP4 expert product (bench/mxfp4_matmul.cpp) against PyTorch in the same run
# (bench/torch_mxfp4.py: the matrix decoded the way openai/gpt-oss's weights.py does, LUT and
# ldexp, then one matmul; timed both per call and with the matrix decoded beforehand).
# usage: bench/mxfp4_matmul.sh [BUILD_DIR] [REPEATS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
repeats=${2:-10}
echo "# $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg), OpenBLAS core type ${OPENBLAS_CORETYPE:-auto}"
ours=$("$build/bench/mxfp4_matmul" "$repeats")
torch=$(/usr/bin/python3 "$root/bench/torch_mxfp4.py" "$repeats")
printf '%s\n%s\n' "$ours" "$torch"
/usr/bin/python3 - "$ours" "$torch" <<'PY'
import json, sys
rows = [json.loads(line) for a in sys.argv[1:] for line in a.splitlines() if line.strip()]
for s in (r for r in rows if r["engine"] == "sinklab"):
    t = next(r for r in rows if r["engine"] == "pytorch" and r["matrix"] == s["matrix"] and r["tokens"] == s["tokens"])
    print(f"{s['matrix']} {s['rows']}x{s['cols']}, {s['tokens']} tokens: sinklab MXFP4 {s['mxfp4_ms']:.2f} ms "
          f"({s['mxfp4_gflops']:.0f} GFLOP/s; float32 pre-decoded {s['float32_ms']:.2f} ms), "
          f"pytorch decode+matmul {t['decode_matmul_ms']:.2f} ms (pre-decoded {t['matmul_ms']:.2f} ms): "
          f"sinklab {t['decode_matmul_ms'] / s['mxfp4_ms']:.2f}x faster than decode+matmul, "
          f"{s['float32_ms'] / s['mxfp4_ms']:.2f} of float32 sgemm's speed at {s['mxfp4_bytes'] / s['float32_bytes']:.3f} of its memory")
PY
