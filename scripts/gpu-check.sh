#!/usr/bin/env bash
# The GPU checks, in one go, for a machine with a CUDA GPU and cupy / torch installed. Most
# wanted first, each step under its own time limit and all of them under BUDGET_S (default
# 480 s), so the run fits one short device loan; the limits add up to more than the budget,
# so a slow machine skips the last steps, and says so:
#   1. the backend table; 2. the test suite's GPU cases (every test the backend fixture runs
#   on cupy and torch-cuda, and the GPU-only ones; PYTEST_K="" runs the whole suite);
#   3. 3 letters epochs on cupy without and with --cuda-graphs, and on torch with them;
#   4. bench/gpu.sh (the samples/s table, the `xpnet graph` rows among it); 5. `xpnet parity`;
#   6. bench/scaling.py on cupy with 1 and 2 ranks (where mpi4py and mpirun are there);
#   7. bench/pipeline.py on cupy; 8. the default letters job on the auto backend.
# Run from the repository root: bash scripts/gpu-check.sh [OUT_DIR]
# OUT_DIR receives two files, rewritten after every step so that a run cut short still
# returns what finished: summary.txt (each step's exit status and seconds, then each letters
# run's last epoch) and logs.tgz (each step's whole log). Runs and the data cache go to $WORK
# (default /tmp/xpnet-gpu-check). array-api-compat and array-api-strict, which the device
# image lacks, are installed from wheels in .whl/ when that folder is there (see README).
set -uo pipefail
shopt -s nullglob  # an empty glob (no run folder, no wheel) is no word at all
out="${1:-gpu-check}"
work="${WORK:-/tmp/xpnet-gpu-check}"
py="${PYTHON:-python3}"
rm -rf "$work"/run-* "$work/logs"  # a rerun on a warm machine starts clean; the data cache stays
mkdir -p "$out" "$work/logs"
if [ -d .whl ] && ! "$py" -c "import array_api_compat, array_api_strict" 2>/dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$work/site" .whl/*.whl && export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 XPNET_CACHE="$work/cache"
deadline=$((SECONDS + ${BUDGET_S:-480}))
status=()

save() {
    printf '%s\n' "${status[@]}" >"$out/summary.txt"
    tar -czf "$out/logs.tgz" -C "$work" logs
}

step() {  # step NAME LIMIT_S COMMAND...: run under the smaller of its limit and what is left
    local name=$1 limit=$2
    shift 2
    local left=$((deadline - SECONDS))
    if [ "$left" -lt 20 ]; then
        status+=("$name skipped: the budget is spent")
        save
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $name (at most ${limit}s): $*"
    local t0=$SECONDS
    # SIGINT first: pytest and the benches print what they have so far on Ctrl-C
    timeout --signal=INT -k 10 "$limit" "$@" 2>&1 | tee "$work/logs/$name.log"
    local rc=${PIPESTATUS[0]} late=""
    case $rc in 124 | 130 | 137) late=" (stopped at its ${limit}s limit)" ;; esac
    status+=("$name rc=$rc $((SECONDS - t0))s$late")
    save
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    "$py" -c "import sys, numpy, cupy, torch, array_api_compat as c; print(sys.version.split()[0], 'numpy', numpy.__version__,
'cupy', cupy.__version__, 'torch', torch.__version__, 'array-api-compat', c.__version__)"
} 2>&1 | tee "$work/logs/gpu.txt"
if ! "$py" -c "import array_api_compat" 2>/dev/null; then
    status+=("array_api_compat is not importable: carry its wheel in .whl/ (see README); nothing else ran")
    save
    exit 1
fi

letters=(-m train.cli train --no-progress --train-samples 20000 --test-samples 1000 --epochs 3 --device cuda)
step backends 60 "$py" -m train.cli backends
step pytest 200 "$py" -m pytest -q -p no:cacheprovider -rs -k "${PYTEST_K-cuda or gpu}" tests
step letters-cupy 90 "$py" "${letters[@]}" --backend cupy --out "$work/run-cupy"
step letters-cupy-graphs 60 "$py" "${letters[@]}" --backend cupy --cuda-graphs --out "$work/run-cupy-graphs"
step letters-torch-graphs 60 "$py" "${letters[@]}" --backend torch --cuda-graphs --out "$work/run-torch-graphs"
status+=("$("$py" scripts/last_epochs.py "$work"/run-*)")
save
step bench 180 env LIMIT_S=150 bash bench/gpu.sh
step parity 60 "$py" -m train.cli parity
if "$py" -c "import mpi4py" 2>/dev/null && command -v mpirun >/dev/null; then
    step scaling 90 "$py" bench/scaling.py --backend cupy --ranks 1,2 --batch-sizes 256,1024 --repeats 2
fi
step pipeline 90 "$py" bench/pipeline.py --backend cupy --samples 20000
step letters-default 180 "$py" -m train.cli train --no-progress --out "$work/run-default"
status+=("$("$py" scripts/last_epochs.py "$work"/run-default)")
save
echo "== summary"
cat "$out/summary.txt"
