#!/usr/bin/env bash
# The whole GPU check in one run, for a machine with Python 3.12, torch (CUDA), nvcc, numpy,
# scipy, scikit-image and pillow but no network:
#
#   1. environment  what the machine is (nvidia-smi, nvcc, torch and its CUDA)
#   2. install      the project's other dependencies from the wheels in .whl/
#                   (scripts/download_wheels.sh fetches them where PyPI is reachable)
#   3. imports      every module the runner, its pod side and the tests import
#   4. nvdiffrast   compile nvdiffrast's CUDA plugin (torch.utils.cpp_extension + ninja)
#   5. parity       tests/runner/test_backend_parity.py and every other `gpu`-marked test
#   6. timing       benchmarks/runner_timing.py: `standard` at 512x512 on a clean and a
#                   phone-style capture, warm-up, synchronised, median of several runs,
#                   GPU peak memory
#
# Everything (one log per step, gpu_check.log with all of it, environment.json,
# parity.xml/parity.json, timing.json, summary.json) goes into one output folder. The whole
# run stays within GPU_CHECK_BUDGET_S seconds (default 450, under 8 minutes): each step gets
# at most what is left, and the timing does fewer runs rather than overrun.
#
#   bash scripts/gpu_check.sh OUTPUT_DIR          # on the GPU machine (default: $OUT)
#   bash scripts/gpu_check.sh --cpu OUTPUT_DIR    # the same plumbing on a CPU, small sizes:
#                                                 # no build, parity only collected
#
# Exit status 0 when no step failed. Environment knobs: PYTHON (python3), GPU_CHECK_MODE
# (gpu|cpu, as --cpu), GPU_CHECK_BUDGET_S, GPU_CHECK_INSTALL (auto|0), GPU_CHECK_SITE (where
# the wheels are installed, /tmp/recon-gpu-check-site), TORCH_EXTENSIONS_DIR, MAX_JOBS, and
# for the timing GPU_CHECK_SIZE, GPU_CHECK_VIEWS, GPU_CHECK_RUNS, GPU_CHECK_WARMUP,
# GPU_CHECK_CASES, GPU_CHECK_THREADS.
set -uo pipefail

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

MODE=${GPU_CHECK_MODE:-gpu}
OUT_ARG=
while (($#)); do
    case $1 in
        --cpu) MODE=cpu ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) OUT_ARG=$1 ;;
    esac
    shift
done
if [[ $MODE != gpu && $MODE != cpu ]]; then
    echo "error: GPU_CHECK_MODE must be gpu or cpu, not '$MODE'" >&2
    exit 2
fi
OUT_DIR=${OUT_ARG:-${OUT:-}}
if [[ -z $OUT_DIR ]]; then
    echo "error: give the output folder as the argument (or set OUT)" >&2
    exit 2
fi
mkdir -p "$OUT_DIR" && OUT_DIR=$(cd "$OUT_DIR" && pwd) || exit 2

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2
PYTHON=${PYTHON:-python3}
BUDGET_S=${GPU_CHECK_BUDGET_S:-450}
SITE=${GPU_CHECK_SITE:-/tmp/recon-gpu-check-site}
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/recon-gpu-check-torch-extensions}
# The project's packages from this checkout (the layout of pyproject.toml's package-dir).
PACKAGES=$REPO/api:$REPO/cli:$REPO/operator:$REPO/runner:$REPO/stack
BASE_PYTHONPATH=${PYTHONPATH:-}
export PYTHONPATH=$PACKAGES${BASE_PYTHONPATH:+:$BASE_PYTHONPATH}
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
STEPS_FILE=$(mktemp)
trap 'rm -f "$STEPS_FILE"' EXIT

# --- helpers --------------------------------------------------------------------------

banner() { printf '\n======== %s ========\n' "$*"; }

# record NAME STATUS SECONDS DETAIL: one line of summary.json (status passed|failed|skipped).
record() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$STEPS_FILE"
    echo "-- $1: $2${4:+: $4}"
}

# loud MESSAGE...: a failure nobody scrolling past can miss.
loud() {
    printf '\n%s\n' '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'
    printf '!!! %s\n' "$@"
    printf '%s\n\n' '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'
}

# seconds_for WANT [RESERVE]: WANT, or less when the budget (minus RESERVE) has less left.
seconds_for() {
    local want=$1 left=$((BUDGET_S - SECONDS - ${2:-0}))
    ((left < want)) && want=$left
    ((want < 5)) && want=5
    echo "$want"
}

# run_logged LOG SECONDS CMD...: CMD with a time limit (its whole process group is killed
# at the limit), its output shown and kept in OUT_DIR/LOG; returns CMD's status (124 when
# it ran out of time).
run_logged() {
    local log=$1 limit=$2
    shift 2
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT_DIR/$log"
    return "${PIPESTATUS[0]}"
}

status_text() { (($1 == 124 || $1 == 137)) && echo "ran out of time" || echo "exit $1"; }

gpu_test_files() {
    # The parity test first, then every other test file that carries the `gpu` marker.
    echo tests/runner/test_backend_parity.py
    grep -rlE 'pytest\.mark\.gpu\b' tests --include='test_*.py' |
        grep -v '^tests/runner/test_backend_parity.py$' | sort
}

# --- the steps ------------------------------------------------------------------------

step_environment() {
    banner "environment ($MODE mode)"
    local start=$SECONDS rc
    run_logged environment.log "$(seconds_for 60)" "$PYTHON" - "$OUT_DIR/environment.json" "$MODE" <<'EOF'
import json, os, platform, shutil, subprocess, sys

def command(*argv):
    if shutil.which(argv[0]) is None:
        return f"{argv[0]}: not found"
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return (done.stdout + done.stderr).strip()

info = {
    "mode": sys.argv[2],
    "python": sys.version.split()[0],
    "python_executable": sys.executable,
    "platform": platform.platform(),
    "cpu_count": os.cpu_count(),
    "nvidia_smi": command("nvidia-smi"),
    "nvcc": command("nvcc", "--version"),
    "CUDA_HOME": os.environ.get("CUDA_HOME"),
    "TORCH_CUDA_ARCH_LIST": os.environ.get("TORCH_CUDA_ARCH_LIST"),
    "TORCH_EXTENSIONS_DIR": os.environ.get("TORCH_EXTENSIONS_DIR"),
}
try:
    import torch
    info.update(torch=torch.__version__, torch_cuda=torch.version.cuda,
                cuda_available=torch.cuda.is_available())
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpu_count=torch.cuda.device_count(),
                    gpu_memory_mib=round(p.total_memory / 2**20),
                    gpu_capability=f"{p.major}.{p.minor}")
except Exception as e:  # reported, and judged by the shell
    info["torch_error"] = f"{type(e).__name__}: {e}"
for key, value in info.items():
    print(f"{key}: {value}")
with open(sys.argv[1], "w") as f:
    json.dump(info, f, indent=2)
    f.write("\n")
if "torch_error" in info:
    sys.exit(3)
if sys.argv[2] == "gpu" and not info["cuda_available"]:
    sys.exit(4)
EOF
    rc=$?
    case $rc in
        0) record environment passed $((SECONDS - start)) "" ;;
        3) loud "torch does not import: see environment.log"
           record environment failed $((SECONDS - start)) "torch does not import" ;;
        4) loud "GPU mode, but torch sees no CUDA device (see environment.log)" \
               "to check only the plumbing on a CPU: scripts/gpu_check.sh --cpu OUTPUT_DIR"
           record environment failed $((SECONDS - start)) "torch sees no CUDA device" ;;
        *) record environment failed $((SECONDS - start)) "$(status_text $rc)" ;;
    esac
    return $rc
}

step_install() {
    banner "install: the project's dependencies from .whl/"
    local start=$SECONDS rc wheels py
    shopt -s nullglob
    wheels=(.whl/*.whl)
    shopt -u nullglob
    py=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if [[ ${GPU_CHECK_INSTALL:-auto} == 0 ]]; then
        record install skipped 0 "GPU_CHECK_INSTALL=0: using $PYTHON's own packages"
        return 0
    fi
    if ((${#wheels[@]} == 0)); then
        if [[ $MODE == cpu ]]; then
            record install skipped 0 "no wheels in .whl/: using $PYTHON's own packages"
            return 0
        fi
        loud "no wheels in $REPO/.whl/: run scripts/download_wheels.sh where PyPI is" \
             "reachable and bring .whl/ along with the repository"
        record install failed 0 "no wheels in .whl/"
        return 1
    fi
    if [[ $py != 3.12 ]]; then
        if [[ $MODE == cpu ]]; then
            record install skipped 0 "the wheels are for CPython 3.12, $PYTHON is $py: using its own packages"
            return 0
        fi
        loud "the wheels in .whl/ are for CPython 3.12, but $PYTHON is $py"
        record install failed 0 "$PYTHON is $py, the wheels are for 3.12"
        return 1
    fi
    rm -rf "$SITE"
    echo "installing ${#wheels[@]} wheels into $SITE"
    run_logged install.log "$(seconds_for 120)" "$PYTHON" -m pip install -q --no-index --no-deps \
        --no-compile --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}"
    rc=$?
    if ((rc != 0)); then
        loud "installing the wheels failed ($(status_text $rc)): see install.log"
        record install failed $((SECONDS - start)) "$(status_text $rc)"
        return $rc
    fi
    export PYTHONPATH=$PACKAGES:$SITE${BASE_PYTHONPATH:+:$BASE_PYTHONPATH}
    export PATH=$SITE/bin:$PATH
    record install passed $((SECONDS - start)) "${#wheels[@]} wheels into $SITE"
}

step_imports() {
    banner "imports"
    local start=$SECONDS rc
    run_logged imports.log "$(seconds_for 90)" "$PYTHON" - "$MODE" <<'EOF'
import importlib, shutil, subprocess, sys

MODULES = [
    # provided by the machine
    "torch", "numpy", "scipy", "skimage", "PIL",
    # from the wheels
    "pydantic", "yaml", "nvdiffrast.torch", "xatlas", "fast_simplification", "minio",
    "kubernetes", "pytest", "pytest_timeout", "trimesh", "cryptography",
    # the project: pipeline, synthetic captures, pod side, local stack (tests/conftest.py)
    "recon_api", "recon_runner.pipeline", "recon_runner.synthetic", "recon_runner.pod.cli",
    "recon_stack.stack",
]
failed = []
for name in MODULES:
    try:
        module = importlib.import_module(name)
    except Exception as e:
        failed.append(name)
        print(f"FAILED {name}: {type(e).__name__}: {e}")
        continue
    version = getattr(module, "__version__", "")
    print(f"ok     {name:24s} {version:16s} {getattr(module, '__file__', '')}")
ninja = shutil.which("ninja")
if ninja:
    version = subprocess.run([ninja, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"ok     ninja {version} at {ninja}")
else:
    print("FAILED ninja: not on PATH (torch.utils.cpp_extension needs it to build nvdiffrast)")
    if sys.argv[1] == "gpu":
        failed.append("ninja")
if failed:
    print(f"missing: {', '.join(failed)}")
    sys.exit(1)
EOF
    rc=$?
    if ((rc != 0)); then
        loud "some modules do not import ($(status_text $rc)): see imports.log"
        record imports failed $((SECONDS - start)) "$(status_text $rc)"
        return $rc
    fi
    record imports passed $((SECONDS - start)) ""
}

step_nvdiffrast() {
    banner "nvdiffrast: compile the CUDA plugin"
    local start=$SECONDS rc
    if [[ $MODE == cpu ]]; then
        record nvdiffrast skipped 0 "CPU mode: nvdiffrast's plugin is CUDA code and needs a GPU"
        return 0
    fi
    export MAX_JOBS=${MAX_JOBS:-$(nproc)}
    echo "TORCH_EXTENSIONS_DIR=$TORCH_EXTENSIONS_DIR MAX_JOBS=$MAX_JOBS"
    run_logged nvdiffrast_build.log "$(seconds_for 270 60)" "$PYTHON" - <<'EOF'
import os, re, shutil, subprocess, sys, sysconfig, time
import torch
import torch.utils.cpp_extension as cpp
import nvdiffrast
import nvdiffrast.torch as dr
import nvdiffrast.torch.ops as ops

print(f"nvdiffrast {nvdiffrast.__version__}, torch {torch.__version__} (CUDA {torch.version.cuda})")
print(f"CUDA_HOME={cpp.CUDA_HOME} ninja={cpp.is_ninja_available()} "
      f"TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST')} "
      f"device capability={torch.cuda.get_device_capability(0)}")
# torch refuses to compile with a toolkit of another major version than its own build's.
nvcc = os.path.join(cpp.CUDA_HOME or "", "bin", "nvcc")
if os.path.exists(nvcc):
    found = re.search(r"release (\d+)\.(\d+)", subprocess.run(
        [nvcc, "--version"], capture_output=True, text=True).stdout)
    toolkit = found.group(1) + "." + found.group(2) if found else "unknown"
    print(f"nvcc: CUDA {toolkit} at {nvcc}")
    if found and torch.version.cuda and found.group(1) != torch.version.cuda.split(".")[0]:
        print(f"WARNING: nvcc is CUDA {toolkit} but torch was built for CUDA "
              f"{torch.version.cuda}; the major versions must match")
else:
    print(f"WARNING: no nvcc under CUDA_HOME={cpp.CUDA_HOME}")
# The plugin's C++ side includes Python.h and is compiled by the host's C++ compiler.
headers = sysconfig.get_paths()["include"]
if not os.path.exists(os.path.join(headers, "Python.h")):
    print(f"WARNING: no Python.h in {headers}: the build needs this Python's headers "
          f"(the python3.{sys.version_info[1]}-dev package)")
if not (shutil.which("c++") or shutil.which("g++")):
    print("WARNING: no C++ compiler (c++ or g++) on PATH")
start = time.perf_counter()
plugin = ops._get_plugin(gl=False)  # compiles on first use, as the runner image does
print(f"plugin {plugin.__name__} ready in {time.perf_counter() - start:.1f} s: {plugin.__file__}")
# One triangle through the compiled rasterizer: the plugin loads and runs on this GPU.
ctx = dr.RasterizeCudaContext(device="cuda")
pos = torch.tensor([[[-0.8, -0.8, 0.0, 1.0], [0.8, -0.8, 0.0, 1.0], [0.0, 0.8, 0.0, 1.0]]],
                   device="cuda")
tri = torch.tensor([[0, 1, 2]], dtype=torch.int32, device="cuda")
rast, _ = dr.rasterize(ctx, pos, tri, (64, 64))
covered = int((rast[..., 3] > 0).sum())
print(f"one triangle at 64x64 covers {covered} pixels")
assert 1000 < covered < 2000, covered
EOF
    rc=$?
    if ((rc != 0)); then
        loud "nvdiffrast's CUDA plugin did NOT build or run ($(status_text $rc))" \
             "log: $OUT_DIR/nvdiffrast_build.log (the compiler's output is in it)" \
             "build folder: $TORCH_EXTENSIONS_DIR" \
             "the parity test is not run; the timing falls back to the PyTorch renderer on CUDA"
        record nvdiffrast failed $((SECONDS - start)) "$(status_text $rc); see nvdiffrast_build.log"
        return $rc
    fi
    record nvdiffrast passed $((SECONDS - start)) ""
}

step_parity() {
    local built=$1 start=$SECONDS rc files
    banner "parity: CPU renderer against nvdiffrast"
    mapfile -t files < <(gpu_test_files)
    echo "test files: ${files[*]}"
    if [[ $MODE == cpu ]]; then
        # Collecting proves the files and their imports load here; running needs CUDA.
        run_logged parity.log "$(seconds_for 120)" "$PYTHON" -m pytest -p no:cacheprovider \
            --collect-only -q -m gpu "${files[@]}"
        rc=$?
        if ((rc != 0)); then
            record parity failed $((SECONDS - start)) "the GPU tests do not collect ($(status_text $rc))"
            return $rc
        fi
        record parity skipped $((SECONDS - start)) \
            "CPU mode: the parity test needs CUDA and nvdiffrast; $(grep -cE '::' "$OUT_DIR/parity.log") tests collected"
        return 0
    fi
    if ((built != 0)); then
        record parity failed 0 "not run: nvdiffrast did not build"
        return 1
    fi
    run_logged parity.log "$(seconds_for 150 60)" "$PYTHON" -m pytest -p no:cacheprovider -q -rA \
        -m gpu --junitxml="$OUT_DIR/parity.xml" "${files[@]}"
    rc=$?
    # Judged by the JUnit report as well: on a GPU machine a skipped GPU test is a failure.
    local counts judged
    counts=$("$PYTHON" - "$OUT_DIR/parity.xml" "$OUT_DIR/parity.json" <<'EOF'
import json, sys, xml.etree.ElementTree as ET
counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
skipped = []
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError) as e:
    counts["report_error"] = str(e)
else:
    for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        for key in ("tests", "failures", "errors", "skipped"):
            counts[key] += int(suite.get(key, 0))
    for case in root.iter("testcase"):
        for s in case.iter("skipped"):
            skipped.append(f"{case.get('classname')}::{case.get('name')}: {s.get('message')}")
counts["skipped_tests"] = skipped
json.dump(counts, open(sys.argv[2], "w"), indent=2)
print(counts.get("report_error") or "{tests} tests: {failures} failed, {errors} errors, "
      "{skipped} skipped".format(**counts))
ok = "report_error" not in counts and counts["tests"] > 0 and not (
    counts["failures"] or counts["errors"] or counts["skipped"])
sys.exit(0 if ok else 1)
EOF
)
    judged=$?
    echo "$counts"
    if ((rc != 0 || judged != 0)); then
        loud "the GPU tests did not all pass ($counts; pytest $(status_text $rc))" \
             "see parity.log and parity.json (a skipped GPU test counts as not passed)"
        record parity failed $((SECONDS - start)) "$counts; see parity.json"
        return 1
    fi
    record parity passed $((SECONDS - start)) "$counts"
}

step_timing() {
    local built=$1 start=$SECONDS rc budget args
    banner "timing: the standard preset"
    if [[ $MODE == cpu ]]; then
        # The plumbing only: a 12-triangle block, tiny images, a few iterations.
        args=(--device cpu --object block --size "${GPU_CHECK_SIZE:-64}"
              --views "${GPU_CHECK_VIEWS:-4}" --grid-resolution 32 --iterations 3
              --texture-size 64 --texture-iterations 2 --samples 5000
              --runs "${GPU_CHECK_RUNS:-2}" --threads "${GPU_CHECK_THREADS:-2}")
    else
        args=(--device cuda --size "${GPU_CHECK_SIZE:-512}" --views "${GPU_CHECK_VIEWS:-6}"
              --runs "${GPU_CHECK_RUNS:-5}")
        [[ -n ${GPU_CHECK_THREADS:-} ]] && args+=(--threads "$GPU_CHECK_THREADS")
    fi
    args+=(--warmup "${GPU_CHECK_WARMUP:-1}" --cases "${GPU_CHECK_CASES:-clean,phone}")
    budget=$((BUDGET_S - SECONDS - 25))
    ((budget < 30)) && budget=30
    if [[ $MODE == gpu ]] && ((built != 0)); then
        echo "nvdiffrast did not build: timing the PyTorch renderer on CUDA instead"
        export RECON_RENDERER=torch
    fi
    run_logged timing.log $((budget + 20)) "$PYTHON" benchmarks/runner_timing.py \
        --output-dir "$OUT_DIR" --preset standard --budget-s "$budget" "${args[@]}"
    rc=$?
    if ((rc != 0)); then
        loud "the timing failed ($(status_text $rc)): see timing.log"
        record timing failed $((SECONDS - start)) "$(status_text $rc)"
        return $rc
    fi
    record timing passed $((SECONDS - start)) "${RECON_RENDERER:+renderer forced to $RECON_RENDERER}"
}

write_summary() {
    banner "summary"
    "$PYTHON" - "$STEPS_FILE" "$OUT_DIR" "$MODE" "$SECONDS" "$BUDGET_S" <<'EOF'
import json, sys
from pathlib import Path

steps_file, out, mode, seconds, budget = sys.argv[1:]
out = Path(out)
steps = []
for line in Path(steps_file).read_text().splitlines():
    name, status, took, detail = line.split("\t")
    steps.append({"step": name, "status": status, "seconds": int(took), "detail": detail})
summary = {
    "mode": mode,
    "status": "failed" if any(s["status"] == "failed" for s in steps) else "passed",
    "seconds": int(seconds),
    "budget_seconds": int(budget),
    "steps": steps,
}
timing = out / "timing.json"
if timing.exists():
    cases = json.loads(timing.read_text())["cases"]
    summary["timing"] = {
        c["case"]: {k: c.get(k) for k in ("renderer", "median_seconds", "runs_done",
                                          "gpu_peak_allocated_mib", "peak_rss_mib", "error")
                    if c.get(k) is not None}
        for c in cases
    }
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
for s in steps:
    print(f"{s['step']:12s} {s['status']:8s} {s['seconds']:4d} s  {s['detail']}")
for case, t in summary.get("timing", {}).items():
    print(f"timing {case}: {t}")
print(f"{summary['status']} in {seconds} s ({mode} mode); results in {out}")
EOF
}

main() {
    echo "gpu_check: $MODE mode, output in $OUT_DIR, budget ${BUDGET_S} s, $(date -u +%FT%TZ)"
    local built=1
    if step_environment && step_install && step_imports; then
        step_nvdiffrast
        built=$?
        step_parity "$built"
        step_timing "$built"
    else
        record rest skipped 0 "not run: the steps above must pass first"
    fi
    write_summary
    grep -q $'\tfailed\t' "$STEPS_FILE" && return 1
    return 0
}

main 2>&1 | tee "$OUT_DIR/gpu_check.log"
exit "${PIPESTATUS[0]}"
