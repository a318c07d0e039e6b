#!/usr/bin/env bash
# The demo and lgg40 end to end on a GPU machine, with the tiny workflow's CUDA test
# beside them. Run in the repository root of a machine that has python3 with a CUDA
# torch but none of our other packages and no network:
#   .whl/  wheels of the missing packages (Python 3.12; README of the device tool)
#   .gpu/  lgg_mri_subset.tar.xz and lgg_mri_dev.tar.xz, repacked at 128 px by
#          benchmarks/device/resample_archive.py (the originals exceed the upload limit)
#
#   gpu_run.sh start   installs, starts the three runs detached (setsid), then waits
#   gpu_run.sh wait    waits on runs started by an earlier call on the same machine
# Either waits until the runs end or DEADLINE seconds (default 480) have passed since
# it began, then reports what finished so far to $OUT (default ./gpu_out). `start`
# leaves unfinished runs going, so that a `wait` call on the still-warm machine picks
# them up (one call is limited to 10 minutes); `wait` stops them at its deadline.
set -u
PHASE=${1:-start}
OUT=${OUT:-gpu_out}
DEADLINE=${DEADLINE:-480}
RUNS=/tmp/gpu_runs
mkdir -p "$OUT" "$RUNS"
start=$(date +%s)
export PYTHONUNBUFFERED=1
if [ -d .whl ] && [ "$PHASE" = start ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    # Compiled once here, not by every job of the first wave at once.
    python3 -m compileall -q -j 0 /tmp/site >/dev/null
    # The rules call `python`: the interpreter that holds torch, by its real path (a
    # link to a venv's interpreter loses the venv).
    mkdir -p /tmp/bin
    printf '#!/bin/sh\nexec %s "$@"\n' "$(python3 -c 'import sys; print(sys.executable)')" \
        >/tmp/bin/python && chmod +x /tmp/bin/python
fi
if [ -d /tmp/site ]; then
    export PYTHONPATH=/tmp/site PATH=/tmp/bin:/tmp/site/bin:$PATH
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}

if [ "$PHASE" = start ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$RUNS/gpu.txt"
    python3 -c "import torch, monai, captum, pandas; print('torch', torch.__version__, \
'cuda', torch.cuda.is_available(), 'monai', monai.__version__, 'pandas', pandas.__version__)" \
        >>"$RUNS/gpu.txt"
    nproc | sed 's/^/cpus /' >>"$RUNS/gpu.txt"
    cat "$RUNS/gpu.txt"
    cat >/tmp/lgg40_gpu.yaml <<'EOF'
run: lgg40_gpu
data:
  archive: [.gpu/lgg_mri_subset.tar.xz, .gpu/lgg_mri_dev.tar.xz]
EOF
    # Eight GPU jobs of each run share the card (139 GiB; each takes a few GiB), where
    # the workstation profile's gpu=1 would queue them one at a time; two threads a job
    # (the demo's config asks for four) so that four jobs of each run go at once.
    smk="python3 -m snakemake --scheduler greedy --resources gpu=8 --max-threads 2 --keep-going"
    # Each run in its own session: it outlives this call, and a deadline stops it and
    # its jobs at once (Snakemake itself, interrupted, waits for its running jobs).
    setsid $smk --cores 7 --configfile config.yaml >"$RUNS/demo.log" 2>&1 &
    echo $! >"$RUNS/demo.pid"
    setsid $smk --cores 7 --configfile workflow/configs/lgg40.yaml /tmp/lgg40_gpu.yaml \
        >"$RUNS/lgg40.log" 2>&1 &
    echo $! >"$RUNS/lgg40.pid"
    XAISEG_TEST_CORES=4 setsid python3 -m pytest -q -p no:cacheprovider \
        tests/e2e/test_workflow_cuda.py >"$RUNS/cuda_test.log" 2>&1 &
    echo $! >"$RUNS/cuda_test.pid"
fi

for name in demo lgg40 cuda_test; do
    pid=$(cat "$RUNS/$name.pid")
    while kill -0 "$pid" 2>/dev/null && [ $(($(date +%s) - start)) -lt "$DEADLINE" ]; do
        sleep 5
    done
    [ "$PHASE" = wait ] && kill -KILL -- -"$pid" 2>/dev/null && sleep 1
done
for run in demo lgg40_gpu; do
    log=$RUNS/${run%_gpu}.log
    pid=$(cat "$RUNS/${run%_gpu}.pid")
    state=$(kill -0 "$pid" 2>/dev/null && echo running || echo ended)
    echo "== $run ($state): $(grep -c 'Finished jobid' "$log") jobs finished"
    tail -3 "$log"
    python3 - "$run" <<'EOF'
import sys
from xaiseg.runtimes import saliency_rates, stage_lines
run = f"results/{sys.argv[1]}"
print("\n".join(stage_lines(f"{run}/benchmarks")))
print("\n".join(saliency_rates(f"{run}/saliency")))
EOF
done 2>&1 | tee "$OUT/stages.txt"
tail -4 "$RUNS/cuda_test.log"
cp "$RUNS"/*.log "$RUNS/gpu.txt" "$OUT/"
# Tables, provenance, benchmarks and logs; not the weights, maps or tensors.
for run in demo lgg40_gpu; do
    tar czf "$OUT/$run.tgz" --exclude='*.safetensors' --exclude='*.pt' --exclude=raw \
        --exclude=data --exclude=demo_data "results/$run" 2>/dev/null
done
ls -la "$OUT"
echo "wall $(($(date +%s) - start)) s"
