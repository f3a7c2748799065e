#!/usr/bin/env bash
# Training-step speed on a CUDA machine, in about 3 minutes: xpnet on cupy (eager and with
# CUDA graphs) and on torch-cuda, each against PyTorch eager on the same device and against
# the products-only ceiling of its own library, interleaved in one process per table:
#   784-512-256-10 (ReLU + cross-entropy, float32) at batch 64, 256, 1024 and 4096, and
#   the wide 784-4096-4096-26 at batch 1024, each with TF32 products off, then on.
# Prints bench/train_step.py's tables.
#
#   bash bench/gpu.sh                     # from any directory
#   PYTHON=/opt/venv/bin/python3 bash bench/gpu.sh
#   LIMIT_S=60 bash bench/gpu.sh --quick  # each table's time limit; extra options go to every table
#
# Needs numpy and array-api-compat, plus cupy and/or a CUDA build of torch; a backend that
# cannot run is skipped with the reason. Nothing here writes outside the terminal.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
PYTHON="${PYTHON:-python3}"
LIMIT_S="${LIMIT_S:-60}"  # each table; start-up and checks take seconds

echo "== xpnet gpu bench $(date -u +%Y-%m-%dT%H:%M:%SZ)"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
else
    echo "nvidia-smi not found: is this a CUDA machine?"
fi

"$PYTHON" - <<'PY' || exit 1
import importlib
import sys

print(f"python {sys.version.split()[0]}")
required_missing = []
for name in ("numpy", "array_api_compat", "cupy", "torch"):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        print(f"{name}: not importable ({exc})")
        if name in ("numpy", "array_api_compat"):
            required_missing.append(name)
        continue
    print(f"{name} {getattr(module, '__version__', '?')}")
if required_missing:
    sys.exit(f"missing {', '.join(required_missing)}: pip install numpy array-api-compat")
PY

table() {  # one bench/train_step.py table under the time limit; a stopped one says so
    timeout --signal=INT -k 10 "$LIMIT_S" "$PYTHON" bench/train_step.py --backends cupy,torch-cuda \
        --network relu-ce --repeats 9 "$@"
    local rc=$?
    [ "$rc" -eq 0 ] || echo "(that table ended early: exit $rc)"
    return "$rc"
}
rc=0
for tf32 in "" --tf32; do
    table --batch-sizes 64,256,1024,4096 $tf32 "$@" || rc=1
    table --layers 784,4096,4096,26 --batch-sizes 1024 $tf32 "$@" || rc=1
done
exit $rc
