#!/usr/bin/env bash
# Every SST-2 experiment behind the README's "Reproducing the paper" tables, then their exports.
#
#   SAFR_DATA_DIR=../shared/data bash scripts/reproduce_sst2.sh [step ...]
#
# Steps (all by default, in this order): paper, decomposition, table6, evaluations, export.
# `paper` runs one job after another with the basic launcher (2 torch threads); the other steps run
# two 1-thread jobs at once (joblib), which was measured faster on 2 cores (README, "Reproducing the
# paper"). Each sweep gets its own folder under multirun/<sweep_name>/; the export step reads the
# newest folder of each and writes docs/results/*.{json,md,csv} and the README's result tables.
# On 2 cores (AMD EPYC, Zen 4/5): paper ~90 min, decomposition ~75 min, table6 ~50 min.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
: "${SAFR_DATA_DIR:?set SAFR_DATA_DIR to the directory holding sst2/{train,validation,test}.parquet}"
export SAFR_DATA_DIR
SWEEP="$PY -m safr_lightning.train -m +sweep=paper dataset=sst2 seed=0,1,2 logger=csv"
PARALLEL="hydra/launcher=joblib hydra.launcher.n_jobs=2"   # 2 jobs x 1 torch thread
SAFR="$SWEEP +row=imp0.1_inter0.1 sweep_name=decomposition $PARALLEL"
PAPER_PADDING_OFF="fidelity.fixed_padding=false fidelity.pad_embedding=zero fidelity.pool_over_pad=false fidelity.regularizers=exact"
newest() { ls -d multirun/"$1"/*/*/ | sort | tail -n 1; }

paper() {  # Table 1 in paper mode: Baseline, λ = 0, 0 and SAFR (0.1, 0.1)
  $SWEEP +row=imp0.1_inter0.1,imp0_inter0,baseline fidelity=paper sweep_name=paper-mode
}
decomposition() {  # SAFR (0.1, 0.1): paper mode, and one group of departures switched at a time
  $SAFR fidelity=paper fidelity.init=paper,exact   # paper mode itself; paper, init -> exact
  $SAFR fidelity=paper $PAPER_PADDING_OFF          # paper, padding -> exact
  $SAFR fidelity=exact fidelity.init=paper         # exact, init -> paper (exact itself: table6's row)
}
table6() {  # exact mode, the Baseline and all 13 λ rows
  $SWEEP sweep_name=table6-exact $PARALLEL
}
evaluations() {  # the other checkpoint of a run, without training (test_on=best in paper mode, last in exact)
  for d in multirun/decomposition/*/*/*_safr_imp0.1_inter0.1_*/; do
    grep -qx -- "- fidelity.init=paper" "$d/.hydra/overrides.yaml" && grep -qx -- "- fidelity=paper" "$d/.hydra/overrides.yaml" &&
      OMP_NUM_THREADS=1 $PY -m safr_lightning.evaluate ckpt_path="$d/checkpoints/best.ckpt"   # -> evaluation_best.json
  done
  for d in "$(newest table6-exact)"*_safr_imp0.1_inter0.1_*/; do
    OMP_NUM_THREADS=1 $PY -m safr_lightning.evaluate ckpt_path="$d/checkpoints/last.ckpt"     # -> evaluation_last.json
  done
}
export_results() {
  local E="$PY -m safr_lightning.sweep.export"
  $E sst2_paper_mode "$(newest paper-mode)" --title "SST-2 in paper mode (fidelity=paper), Table 1's rows" \
    --command "$SWEEP +row=imp0.1_inter0.1,imp0_inter0,baseline fidelity=paper sweep_name=paper-mode"
  $E sst2_table6_exact "$(newest table6-exact)" --title "SST-2 in exact mode, the whole of Table 6" \
    --command "$SWEEP sweep_name=table6-exact $PARALLEL"
  # shellcheck disable=SC2046
  $E sst2_decomposition $(ls -d multirun/decomposition/*/*/) "$(newest table6-exact)" \
    --kind decomposition --evaluations evaluation_best.json evaluation_last.json \
    --title "SST-2, SAFR (0.1, 0.1): which departure moves which number" \
    --command "bash scripts/reproduce_sst2.sh decomposition table6 evaluations"
  $E --readme README.md
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(paper decomposition table6 evaluations export)
for step in "${steps[@]}"; do
  case "$step" in
    paper|decomposition|table6|evaluations) "$step";;
    export) export_results;;
    *) echo "error: unknown step '$step' (paper, decomposition, table6, evaluations, export)" >&2; exit 2;;
  esac
done
