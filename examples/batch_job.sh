#!/usr/bin/env bash
# A batch job: it runs many model calls without asking first, adds up the
# usage, and charges it in one go when it exits (even on error or Ctrl-C).
#
#   SLUICE_SEGMENT=sluice-demo examples/batch_job.sh [ITEMS]
set -euo pipefail
sluice=${SLUICE:-sluice}
items=${1:-30}
input_tokens=0
output_tokens=0

charge() {
  [ "$input_tokens" -gt 0 ] || return 0
  "$sluice" charge --attr team=research --attr feature=nightly-eval --model gpt-4o-mini \
    --input-tokens "$input_tokens" --output-tokens "$output_tokens" || true
}
trap charge EXIT

for ((i = 1; i <= items; i++)); do
  # ... call the model for item $i here; it reports its usage ...
  input_tokens=$((input_tokens + 900 + i % 7 * 10))
  output_tokens=$((output_tokens + 300 + i % 5 * 20))
  sleep 0.25
done
echo "batch_job: processed $items items ($input_tokens in, $output_tokens out); charging at exit"
