#!/usr/bin/env bash
# The GPU checks, in one go, for a machine with a CUDA GPU and cupy / torch installed, most
# wanted first (a short device loan may end part-way):
#   1. the backend table, 2. `xpnet parity` (every backend, both dtypes, against numpy
#   float64), 3. the test suite's GPU cases (every test the backend fixture runs on cupy and
#   torch-cuda, plus the GPU-only ones, the 2-rank cupy MPI test among them when mpi4py is
#   installed; PYTEST_K="" runs the whole suite), 4. bench/gpu.sh, 5. bench/scaling.py on
#   cupy with 1 and 2 ranks (when mpi4py is installed), 6. the default letters job on the
#   auto backend (cupy), 7. 4 epochs of it with --cuda-graphs on cupy and on torch (their
#   samples/s against step 6's), 8. bench/pipeline.py on cupy.
# Run from the repository root: bash scripts/gpu-check.sh [LOG_DIR]
# Each step's log goes to LOG_DIR (default gpu-check/); the letters run and its data cache go
# to $WORK (default /tmp/xpnet-gpu-check). A summary prints at the end.
set -uo pipefail
out="${1:-gpu-check}"
work="${WORK:-/tmp/xpnet-gpu-check}"
mkdir -p "$out" "$work"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"
status=()

step() {  # step NAME COMMAND...: run, log to $out/NAME.log, remember pass/fail
    local name=$1; shift
    echo "== $name: $*"
    local t0=$SECONDS
    "$@" 2>&1 | tee "$out/$name.log"
    local rc=${PIPESTATUS[0]}
    status+=("$name rc=$rc $((SECONDS - t0))s")
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
$py -c "import sys, numpy, cupy, torch; print(sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__, 'torch', torch.__version__)" | tee -a "$out/gpu.txt"

step backends $py -m train.cli backends
step parity $py -m train.cli parity
step pytest $py -m pytest -q -p no:cacheprovider -rs -k "${PYTEST_K-cuda or gpu}" tests
step bench bash bench/gpu.sh
if $py -c "import mpi4py" 2>/dev/null; then
    step scaling $py bench/scaling.py --backend cupy --ranks 1,2 --batch-sizes 256,1024 --repeats 2
fi
step letters env XPNET_CACHE="$work/cache" $py -m train.cli train --no-progress --out "$work/run"
for lib in cupy torch; do
    step "letters-graphs-$lib" env XPNET_CACHE="$work/cache" $py -m train.cli train --no-progress --backend $lib \
        --device cuda --cuda-graphs --epochs 4 --out "$work/run-graphs-$lib"
done
step pipeline env XPNET_CACHE="$work/cache" $py bench/pipeline.py --backend cupy

echo "== summary"
printf '%s\n' "${status[@]}" | tee "$out/summary.txt"
