#!/usr/bin/env bash
# The whole job on the embedded default: build the synthetic demo set (no download), train the five
# lead-set networks, classify a separately generated test set and score it with the Challenge metric.
# Usage: bash scripts/demo.sh [WORK_DIR]   (default: demo/; ECG_SETTINGS may name a settings file)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-demo}"
python -m ecgdata.synthetic "$work/train" --records 300 --seed 1
python -m ecgdata.synthetic "$work/test" --records 100 --seed 2
python train_model.py "$work/train" "$work/model"
python test_model.py "$work/model" "$work/test" "$work/outputs"
python evaluate_model.py "$work/test" "$work/outputs" "$work/scores.csv" "$work/class_scores.csv"
echo "Scores on the held-out synthetic test set ($work/scores.csv):"
cat "$work/scores.csv"; echo
