#!/usr/bin/env bash
# The GPU checks, in one go, for a machine with a CUDA GPU and cupy / torch installed. Most
# wanted first, each step under its own time limit and all of them under BUDGET_S (default
# 420 s), so the run fits one short device loan; a step the budget cannot fit says so:
#   1. the backend table, then the CNN's training step on cupy against PyTorch eager on CUDA
#      (bench/cnn_step.py --device cuda: the one GPU target not yet measured);
#   2. the default letters job on the auto backend (it should pick cupy, with CUDA graphs),
#      two epochs of `--preset cnn` on cupy, then 3 epochs of the default on cupy without
#      graphs, one epoch on numpy on this machine's CPU cores, and 3 epochs on torch-cuda;
#   3. a small run trained on cupy, and the default run: each with its outputs on host-made
#      inputs and its held-out samples (scripts/gpu_outputs.py), returned as cupy-run.tgz
#      (tests/test_gpu_checkpoint.py keeps its contract) and run-auto.tgz;
#   4. `xpnet parity`; 5. the test suite's GPU cases (every test the backend fixture runs on
#      cupy and torch-cuda, the GPU-only ones, and the 2-rank cupy MPI run; PYTEST_K="" runs
#      the whole suite); 6. bench/gpu.sh (the samples/s tables); 7. bench/op_profile.py (each op's
#      device time in a step, from CUDA events: where a step trails its products).
# Run from the repository root: bash scripts/gpu-check.sh [OUT_DIR]
# OUT_DIR receives, rewritten after every step so that a run cut short still returns what
# finished: summary.txt (each step's exit status and seconds, then each letters run's last
# epoch), logs.tgz (each step's whole log), cupy-run.tgz and run-auto.tgz. Runs and the data cache go to
# $WORK (default /tmp/xpnet-gpu-check). What the device image lacks is installed from wheels
# in .whl/ when that folder is there: array-api-compat and array-api-strict (and mpi4py) into
# a target folder, mpich (its mpirun and libmpi) under a prefix (see docs/gpu.md).
set -uo pipefail
shopt -s nullglob  # an empty glob (no run folder, no wheel) is no word at all
out="${1:-gpu-check}"
work="${WORK:-/tmp/xpnet-gpu-check}"
py="${PYTHON:-python3}"
rm -rf "$work"/run-* "$work/logs"  # a rerun on a warm machine starts clean; the data cache stays
mkdir -p "$out" "$work/logs"
wheels=(.whl/*.whl)
if [ ${#wheels[@]} -gt 0 ]; then
    libs=() mpich=()
    for w in "${wheels[@]}"; do case $w in .whl/mpich-*) mpich+=("$w") ;; *) libs+=("$w") ;; esac; done
    [ ${#libs[@]} -gt 0 ] && "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target "$work/site" "${libs[@]}" && export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
    # pip's --target leaves out a wheel's lib/ and bin/ data: mpich goes under a prefix instead
    [ ${#mpich[@]} -gt 0 ] && "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --prefix "$work/mpi" "${mpich[@]}" && export PATH="$work/mpi/bin:$PATH" \
        LD_LIBRARY_PATH="$work/mpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 XPNET_CACHE="$work/cache"
deadline=$((SECONDS + ${BUDGET_S:-420}))
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
    nproc
    "$py" -c "import sys, numpy, cupy, torch, array_api_compat as c; print(sys.version.split()[0], 'numpy', numpy.__version__,
'cupy', cupy.__version__, 'torch', torch.__version__, 'array-api-compat', c.__version__)"
    "$py" -c "from mpi4py import MPI; print('mpi4py', MPI.Get_library_version().splitlines()[0])"
    command -v mpirun
} 2>&1 | tee "$work/logs/gpu.txt"
if ! "$py" -c "import array_api_compat" 2>/dev/null; then
    status+=("array_api_compat is not importable: carry its wheel in .whl/ (see docs/gpu.md); nothing else ran")
    save
    exit 1
fi

train=("$py" -m xpnet train --no-progress)
step backends 30 "$py" -m xpnet backends
step cnn-bench 100 "$py" bench/cnn_step.py --device cuda --batch-sizes 64,256 --rounds 3 --seconds 1
step letters-auto 150 "${train[@]}" --out "$work/run-auto"
step cnn-cupy 90 "${train[@]}" --preset cnn --backend cupy --epochs 2 --out "$work/run-cnn-cupy"
step letters-cupy-eager 60 "${train[@]}" --backend cupy --no-cuda-graphs --epochs 3 --out "$work/run-cupy-eager"
step letters-numpy-1-epoch 60 "${train[@]}" --backend numpy --epochs 1 --out "$work/run-numpy-1-epoch"
step letters-torch 60 "${train[@]}" --backend torch --device cuda --epochs 3 --out "$work/run-torch"
status+=("$("$py" scripts/last_epochs.py "$work"/run-*)")
save
small=(--train-samples 3000 --test-samples 1000 --epochs 2 --layers 32 --seed 1)
step cupy-run 60 bash -c "${train[*]} --backend cupy ${small[*]} --out $work/cupy-run &&
    $py scripts/gpu_outputs.py $work/cupy-run cupy cuda && $py scripts/gpu_outputs.py $work/run-auto cupy cuda"
for run in cupy-run run-auto; do
    tar -czf "$out/$run.tgz" -C "$work" "$run"/{config.json,history.json,model.safetensors,outputs.npy,heldout.npz} \
        2>/dev/null
done
step parity 60 "$py" -m xpnet parity
xdist=()
"$py" -c "import xdist" 2>/dev/null && xdist=(-n 6)
step pytest 150 "$py" -m pytest -q -p no:cacheprovider -rs "${xdist[@]}" -k "${PYTEST_K-cuda or gpu}" tests
step bench 170 env LIMIT_S=50 bash bench/gpu.sh --quick --repeats 11
step op-profile 60 "$py" bench/op_profile.py --backends cupy,torch-cuda --network relu-ce --batch-sizes 64,4096
echo "== summary"
cat "$out/summary.txt"
