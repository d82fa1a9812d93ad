#!/usr/bin/env bash
# Fetch into .whl/ the wheels that scripts/gpu_check.sh installs on a GPU machine without
# network: exactly the pins of scripts/gpu-check-wheels.txt, built for CPython 3.12 on
# manylinux x86_64, whatever this machine's own Python is. Then check that the folder is
# complete (scripts/check_wheels.py) and small enough to carry.
#
#   scripts/download_wheels.sh            # run where PyPI is reachable
#
# Environment: PYTHON (default .venv/bin/python, else python3) runs pip and the check;
# GPU_CHECK_WHEELS_MAX_MIB (default 40) is the size the folder must stay under.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-}
if [[ -z $PYTHON ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
MAX_MIB=${GPU_CHECK_WHEELS_MAX_MIB:-40}
LIST=scripts/gpu-check-wheels.txt
DEST=.whl

mapfile -t pins < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$LIST" | grep -v '^$')
echo "downloading ${#pins[@]} wheels from $LIST into $DEST/"

# A fresh folder, so that nothing from an earlier list is carried along.
rm -rf "$DEST"
mkdir -p "$DEST"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 \
    -d "$DEST" "${pins[@]}"

"$PYTHON" scripts/check_wheels.py --wheels "$DEST" --list "$LIST" --compare-installed

kib=$(du -sk "$DEST" | cut -f1)
mib=$(( (kib + 1023) / 1024 ))
echo "$(find "$DEST" -type f -name '*.whl' | wc -l) wheels, ${mib} MiB in $DEST/"
if (( kib > MAX_MIB * 1024 )); then
    echo "error: $DEST/ is ${mib} MiB, over the ${MAX_MIB} MiB to carry" >&2
    exit 1
fi
