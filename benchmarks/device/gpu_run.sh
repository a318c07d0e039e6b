#!/usr/bin/env bash
# The demo and lgg40 end to end on a GPU machine, with the tiny workflow's CUDA test
# beside them. Run in the repository root of a machine that has python3 with a CUDA
# torch but none of our other packages and no network:
#   .whl/  wheels of the missing packages (Python 3.12; README of the device tool)
#   .gpu/  lgg_mri_subset.tar.xz and lgg_mri_dev.tar.xz, repacked at 128 px by
#          benchmarks/device/resample_archive.py (the originals exceed the upload limit)
# DEADLINE (seconds, default 480): runs still going then are stopped, and what they
# finished is reported. Everything worth keeping goes to $OUT (default ./gpu_out).
set -u
OUT=${OUT:-gpu_out}
DEADLINE=${DEADLINE:-480}
mkdir -p "$OUT"
start=$(date +%s)
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
    # The rules call `python`: the interpreter that holds torch, by its real path (a
    # link to a venv's interpreter loses the venv).
    mkdir -p /tmp/bin
    printf '#!/bin/sh\nexec %s "$@"\n' "$(python3 -c 'import sys; print(sys.executable)')" \
        >/tmp/bin/python && chmod +x /tmp/bin/python
    export PATH=/tmp/bin:/tmp/site/bin:$PATH
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, monai, captum, pandas; print('torch', torch.__version__, 'cuda', \
torch.cuda.is_available(), 'monai', monai.__version__, 'pandas', pandas.__version__)" \
    | tee -a "$OUT/gpu.txt"
nproc | sed 's/^/cpus /' | tee -a "$OUT/gpu.txt"

cat >/tmp/lgg40_gpu.yaml <<'EOF'
run: lgg40_gpu
data:
  archive: [.gpu/lgg_mri_subset.tar.xz, .gpu/lgg_mri_dev.tar.xz]
EOF
# Four GPU jobs share the card (139 GiB; each takes a few GiB), where the workstation
# profile's gpu=1 would queue them one at a time.
smk="python3 -m snakemake --scheduler greedy --resources gpu=4 --keep-going"
# Each run in its own process group, so that the deadline stops it and its jobs at once
# (Snakemake itself, interrupted, waits for its running jobs).
setsid $smk --cores 6 --configfile config.yaml >"$OUT/demo.log" 2>&1 &
demo=$!
setsid $smk --cores 8 --configfile workflow/configs/lgg40.yaml /tmp/lgg40_gpu.yaml \
    >"$OUT/lgg40.log" 2>&1 &
lgg=$!
python3 -m pytest -q -p no:cacheprovider tests/e2e/test_workflow_cuda.py >"$OUT/cuda_test.log" 2>&1
tail -5 "$OUT/cuda_test.log"
for pid in $demo $lgg; do
    while kill -0 $pid 2>/dev/null && [ $(($(date +%s) - start)) -lt "$DEADLINE" ]; do sleep 5; done
    kill -KILL -- -$pid 2>/dev/null
done
wait
for run in demo lgg40_gpu; do
    echo "== $run: $(grep -c 'Finished jobid\|Finished job' "$OUT/${run%_gpu}.log") jobs finished"
    tail -3 "$OUT/${run%_gpu}.log"
    python3 - "$run" <<'EOF'
import sys
from xaiseg.runtimes import saliency_rates, stage_lines
run = f"results/{sys.argv[1]}"
print("\n".join(stage_lines(f"{run}/benchmarks")))
print("\n".join(saliency_rates(f"{run}/saliency")))
EOF
done 2>&1 | tee "$OUT/stages.txt"
# Tables, provenance, benchmarks and logs; not the weights, maps or tensors.
tar czf "$OUT/results.tgz" --exclude='*.safetensors' --exclude='*.pt' --exclude=raw \
    --exclude=data results 2>/dev/null
ls -la "$OUT"
echo "wall $(($(date +%s) - start)) s"
