#!/usr/bin/env bash
# One call on a GPU machine: where a job's start goes, the throughput table of every GPU
# stage, then lgg40 end to end beside the tiny workflow's CUDA test. Run in the
# repository root of a machine that has python3 with a CUDA torch but none of our other
# packages and no network:
#   .whl/  wheels of the missing packages (Python 3.12): benchmarks/device/wheels.txt
#   .gpu/  lgg_mri_subset.tar.xz and lgg_mri_dev.tar.xz, repacked at 128 px by
#          benchmarks/device/resample_archive.py (the originals exceed the upload limit)
# Writes to $OUT (default ./gpu_out): gpu.txt, startup.txt, throughput.md, report.txt
# and results.tgz (tables, provenance, benchmarks and logs; no weights or tensors).
# Whatever has not ended DEADLINE seconds (default 570) after the start is stopped and
# reported as it stands. LGG40=0 leaves lgg40 out and starts the CUDA test first, beside
# the benchmarks (a short call: THROUGHPUT_ARGS then sizes the table's runs).
set -u
OUT=${OUT:-gpu_out}
DEADLINE=${DEADLINE:-570}
LGG40=${LGG40:-1}
THROUGHPUT_ARGS=${THROUGHPUT_ARGS:---images 8192 --epochs 2 --train-batches 16 128}
RUNS=/tmp/gpu_runs
mkdir -p "$OUT" "$RUNS"
start=$(date +%s)
left() { echo $((DEADLINE - ($(date +%s) - start))); }
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    # Compiled once here, not by every job of the first wave at once.
    python3 -m compileall -q -j 0 /tmp/site >/dev/null
    # The rules call `python`: the interpreter that holds torch, by its real path.
    mkdir -p /tmp/bin
    printf '#!/bin/sh\nexec %s "$@"\n' "$(python3 -c 'import sys; print(sys.executable)')" \
        >/tmp/bin/python && chmod +x /tmp/bin/python
    export PYTHONPATH=/tmp/site PATH=/tmp/bin:/tmp/site/bin:$PATH
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
python3 -m compileall -q -j 0 src >/dev/null

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, monai, captum; print('torch', torch.__version__, 'cuda', \
torch.cuda.is_available(), 'monai', monai.__version__)"
    echo "cpus $(nproc); setup $(($(date +%s) - start)) s"
} 2>&1 | tee "$OUT/gpu.txt"

cuda_test() {
    XAISEG_TEST_CORES=$1 setsid python3 -m pytest -q -p no:cacheprovider \
        tests/e2e/test_workflow_cuda.py >"$RUNS/cuda_test.log" 2>&1 &
    echo $! >"$RUNS/cuda_test.pid"
}
[ "$LGG40" = 0 ] && cuda_test 8
timeout 90 python3 benchmarks/startup_phases.py >"$OUT/startup.txt" 2>&1
cat "$OUT/startup.txt"
timeout "$(($(left) - 25))" python3 benchmarks/device/throughput.py $THROUGHPUT_ARGS \
    --out "$OUT/throughput.md" >"$RUNS/throughput.log" 2>&1
grep -v "it/s\]\|s/it\]" "$RUNS/throughput.log" | tail -20

lgg_start=$(date +%s)
if [ "$LGG40" != 0 ]; then
    cat >/tmp/lgg40_gpu.yaml <<'YAML'
run: lgg40_gpu
data:
  archive: [.gpu/lgg_mri_subset.tar.xz, .gpu/lgg_mri_dev.tar.xz]
YAML
    # Up to eight GPU jobs share the card (139 GiB; each takes a few GiB).
    setsid python3 -m snakemake --scheduler greedy --resources gpu=8 --cores 12 \
        --keep-going --configfile workflow/configs/lgg40.yaml /tmp/lgg40_gpu.yaml \
        >"$RUNS/lgg40.log" 2>&1 &
    echo $! >"$RUNS/lgg40.pid"
    cuda_test 4
else
    sleep 3600 &  # no lgg40 run: a stand-in that the deadline ends
    echo $! >"$RUNS/lgg40.pid"
fi
lgg_end=""
while [ "$(left)" -gt 20 ]; do
    lgg=$(cat "$RUNS/lgg40.pid"); cuda=$(cat "$RUNS/cuda_test.pid")
    if [ -z "$lgg_end" ] && ! kill -0 "$lgg" 2>/dev/null; then lgg_end=$(date +%s); fi
    if [ "$LGG40" = 0 ]; then kill -0 "$cuda" 2>/dev/null || break
    else kill -0 "$lgg" 2>/dev/null || kill -0 "$cuda" 2>/dev/null || break; fi
    sleep 2
done
for name in lgg40 cuda_test; do kill -KILL -- -"$(cat "$RUNS/$name.pid")" 2>/dev/null; done
kill "$(cat "$RUNS/lgg40.pid")" 2>/dev/null
{
    if [ "$LGG40" != 0 ]; then
        if [ -n "$lgg_end" ]; then
            echo "lgg40 ended after $((lgg_end - lgg_start)) s"
        else
            echo "lgg40 stopped at the deadline after $(($(date +%s) - lgg_start)) s"
        fi
        echo "$(grep -c 'Finished jobid' "$RUNS/lgg40.log") jobs finished"
        python3 -c "from xaiseg.runtimes import saliency_rates, stage_lines
run = 'results/lgg40_gpu'
print('\n'.join(stage_lines(f'{run}/benchmarks')))
print('\n'.join(saliency_rates(f'{run}/saliency')))"
        cat results/lgg40_gpu/summary.csv 2>/dev/null
    fi
    echo "== CUDA test"
    tail -15 "$RUNS/cuda_test.log"
} >"$OUT/report.txt" 2>&1
cat "$OUT/report.txt"
# The CUDA test's job logs (where a job failed, its reason), the runs' logs and tables,
# provenance and benchmarks; not the weights, maps or tensors.
tiny=$(ls -d /tmp/pytest-of-*/pytest-*/cuda*/results/tiny 2>/dev/null | head -1)
tar czf "$OUT/results.tgz" --exclude='*.safetensors' --exclude='*.pt' --exclude=raw \
    --exclude=data --exclude=demo_data $( [ "$LGG40" != 0 ] && echo results/lgg40_gpu) \
    ${tiny:+"$tiny/logs"} "$RUNS"/*.log 2>/dev/null
ls -la "$OUT"
echo "wall $(($(date +%s) - start)) s"
