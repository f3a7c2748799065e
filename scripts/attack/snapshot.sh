#!/bin/bash
# Copy the committed tree of REPO (HEAD) into DEST: the code an attack runs, fixed while it runs.
set -euo pipefail
REPO=${1:?usage: snapshot.sh REPO DEST}
DEST=${2:?usage: snapshot.sh REPO DEST}
if [ -e "$DEST" ] && [ -n "$(ls -A "$DEST")" ]; then
    echo "snapshot.sh: $DEST is not empty; give a new folder (files deleted since an older snapshot would stay)" >&2
    exit 1
fi
mkdir -p "$DEST"
git -C "$REPO" archive HEAD | tar -x -C "$DEST"
echo "snapshot of $(git -C "$REPO" rev-parse --short HEAD) in $DEST"
