#!/usr/bin/env bash
# Every SST-2 experiment behind the README's "Reproducing the paper" tables, then their exports.
#
#   SAFR_DATA_DIR=../shared/data bash scripts/reproduce_sst2.sh [step ...]
#
# Steps (all by default, in this order): paper, decomposition, table6, evaluations, export.
# Jobs run one after another with the basic launcher (2 torch threads on a 2-core machine; see the
# README for the launcher measurement). Each sweep gets its own folder under multirun/<sweep_name>/;
# the export step reads the newest folder of each and writes docs/results/*.{json,md,csv} and the
# README's result tables. On 2 cores (AMD EPYC Zen 4) the whole script takes about 5 hours.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
: "${SAFR_DATA_DIR:?set SAFR_DATA_DIR to the directory holding sst2/{train,validation,test}.parquet}"
export SAFR_DATA_DIR
SWEEP="$PY -m safr_lightning.train -m +sweep=paper dataset=sst2 seed=0,1,2 logger=csv"
SAFR="$SWEEP +row=imp0.1_inter0.1 sweep_name=decomposition"
PAPER_PADDING_OFF="fidelity.fixed_padding=false fidelity.pad_embedding=zero fidelity.pool_over_pad=false fidelity.regularizers=exact"
EXACT_PADDING_ON="fidelity.fixed_padding=true fidelity.pad_embedding=trained fidelity.pool_over_pad=true fidelity.regularizers=paper"
newest() { ls -d multirun/"$1"/*/*/ | sort | tail -n 1; }

paper() {  # Table 1 in paper mode: Baseline, λ = 0, 0 and SAFR (0.1, 0.1)
  $SWEEP +row=imp0.1_inter0.1,imp0_inter0,baseline fidelity=paper sweep_name=paper-mode
}
decomposition() {  # SAFR (0.1, 0.1): one group of departures switched at a time (paper mode's own row: paper())
  $SAFR fidelity=paper $PAPER_PADDING_OFF      # paper, padding -> exact
  $SAFR fidelity=exact fidelity.init=paper     # exact, init -> paper
  $SAFR fidelity=exact data.bucketing=false    # exact, batching -> paper
  $SAFR fidelity=paper fidelity.init=exact     # paper, init -> exact
  $SAFR fidelity=exact                         # exact mode itself, the reverse direction's base
  $SAFR fidelity=exact $EXACT_PADDING_ON       # exact, padding -> paper
}
table6() {  # exact mode, the Baseline and all 13 λ rows
  $SWEEP sweep_name=table6-exact
}
evaluations() {  # test on the other checkpoint (no training), and the other token rankings
  for d in "$(newest paper-mode)"*_safr_imp0.1_inter0.1_*/; do
    $PY -m safr_lightning.evaluate ckpt_path="$d/checkpoints/best.ckpt"   # -> evaluation_best.json
  done
  for d in multirun/decomposition/*/*/*_safr_imp0.1_inter0.1_*/; do
    case "$(cat "$d/.hydra/overrides.yaml")" in
      *fidelity=exact*) grep -q "fidelity\.\|data\.bucketing" "$d/.hydra/overrides.yaml" ||
        $PY -m safr_lightning.evaluate ckpt_path="$d/checkpoints/last.ckpt";;   # -> evaluation_last.json
    esac
  done
  for d in "$(newest table6-exact)"*/; do
    for scorer in vmask attention; do
      case "$d" in *_baseline_*) [ "$scorer" = vmask ] && continue;; esac
      $PY -m safr_lightning.evaluate ckpt_path="$d" srs.scorer=$scorer   # -> evaluation_<scorer>.json
    done
  done
}
export_results() {
  local E="$PY -m safr_lightning.sweep.export"
  $E sst2_paper_mode "$(newest paper-mode)" --title "SST-2 in paper mode (fidelity=paper), Table 1's rows" \
    --command "$SWEEP +row=imp0.1_inter0.1,imp0_inter0,baseline fidelity=paper sweep_name=paper-mode"
  $E sst2_table6_exact "$(newest table6-exact)" --title "SST-2 in exact mode, the whole of Table 6" \
    --command "$SWEEP sweep_name=table6-exact"
  $E sst2_scorers_exact "$(newest table6-exact)" --kind scorers --evaluations evaluation_vmask.json evaluation_attention.json \
    --title "SST-2 exact mode: SRS@30 of each token ranking" \
    --command "python -m safr_lightning.evaluate ckpt_path=JOB_DIR srs.scorer={vmask,attention} for every job"
  # shellcheck disable=SC2046
  $E sst2_decomposition "$(newest paper-mode)" $(ls -d multirun/decomposition/*/*/) \
    --kind decomposition --evaluations evaluation_best.json evaluation_last.json \
    --title "SST-2, SAFR (0.1, 0.1): which departure moves which number" \
    --command "bash scripts/reproduce_sst2.sh paper decomposition table6 evaluations"
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
