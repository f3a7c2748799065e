#!/usr/bin/env bash
# Training-step speed on a CUDA machine, in under 5 minutes: xpnet on cupy and on torch-cuda,
# with numpy on the host as the CPU reference, each against PyTorch eager on the same device
# and against the products-only ceiling of its own library, batch sizes 256, 1024 and 4096,
# both networks (ReLU + cross-entropy, sigmoid + quadratic). Prints the table of
# bench/train_step.py.
#
#   bash bench/gpu.sh                     # from any directory
#   PYTHON=/opt/venv/bin/python3 bash bench/gpu.sh
#
# Needs numpy and array-api-compat, plus cupy and/or a CUDA build of torch; a backend that
# cannot run is skipped with the reason. Nothing here writes outside the terminal.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
PYTHON="${PYTHON:-python3}"
LIMIT_S="${LIMIT_S:-270}"  # the benchmark itself; start-up and checks take seconds

echo "== xpnet gpu bench $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
else
    echo "nvidia-smi not found: is this a CUDA machine?"
fi

"$PYTHON" - <<'EOF'
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
EOF

timeout --signal=INT -k 10 "$LIMIT_S" "$PYTHON" bench/train_step.py \
    --backends cupy,torch-cuda,numpy --batch-sizes 256,1024,4096 --network both --quick --repeats 9 "$@"
