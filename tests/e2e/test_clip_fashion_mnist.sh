#!/usr/bin/env bash
# CLIP pre-trained from scratch on real image-text pairs: the first 400 Fashion-MNIST training images
# captioned "a photo of a <class name>" (scripts/fashion_mnist_pairs.py), made a pre-decoded file by
# tp-preprocess --data_processor clip, and models/clip/fashion_mnist_config.json trained by
# tp-pretrain for 300 steps of 32 pairs (seconds).  Checked:
#   - the contrastive loss (ln(32) = 3.47 for features that tell nothing apart; the first 10 steps'
#     mean is 4.0 at seed 7) falls below 2.6 and by at least 1 (seeds 7, 8, 9: 4.01 -> 1.77,
#     3.85 -> 1.97, 4.22 -> 2.22);
#   - zero-shot classification by tp-infer of the first 200 test images, each against the 10 class
#     captions, scores at least 30% (chance: 10%; seeds 7, 8, 9 give 52, 53.5, 48.5%), the same from the
#     pre-decoded file as from the text<TAB>path list of PNG files, one prediction per image;
#   - a run resumed from its step-250 checkpoint logs the uninterrupted run's losses and ends with its
#     weights, bit for bit.
# Under TP_TEST_QUICK the same programs run 20 steps on 64 pairs, without the thresholds.
source "$(dirname "$0")/common.sh"

train=400 test=200 steps=300 save=250
[ "$quick" = 1 ] && train=64 test=32 steps=20 save=15
config="$repo/models/clip/fashion_mnist_config.json"

fashion_pairs clip "$config" 16 "$train" "$test"

cat >"$work/run.json" <<JSON
{
  "model": "$config",
  "tokenizer": "space",
  "vocab_path": "$work/pairs/vocab.txt",
  "dataset_path": "$work/train.tpimg",
  "batch_size": 32,
  "seq_length": 16,
  "total_steps": $steps,
  "learning_rate": 1e-3,
  "report_steps": 10,
  "save_checkpoint_steps": $save,
  "threads": 1
}
JSON
"$build/tp-pretrain" --config "$work/run.json" --output_dir "$work/run" 2>"$work/log" || { cat "$work/log" >&2; fail "tp-pretrain failed"; }
clr_loss() { sed -E 's/.*"clr_loss":([0-9.]+).*/\1/'; }
first=$(head -1 "$work/run/metrics.jsonl" | clr_loss)
last=$(tail -1 "$work/run/metrics.jsonl" | clr_loss)
echo "CLIP on $train Fashion-MNIST pairs, $steps steps of 32: contrastive loss $first -> $last"
if [ "$quick" != 1 ]; then
    awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 2.6 && b < a - 1) }' ||
        fail "the contrastive loss did not fall below 2.6 (ln(32) = 3.47): $first -> $last"
fi

# Resumed from the checkpoint at step $save: the same losses and weights.
pretrain_resumes "$work/run" "$save" "$steps" --config "$work/run.json"

# Zero-shot classification of the test images against the 10 class captions.
accuracy=$(zero_shot_accuracy "$work/run" "$work/t10k.tpimg" "$work/pairs/t10k.tsv" "$work/pairs/classes.txt" "$test" \
    "${tokenizer[@]}" --output_prob)
echo "zero-shot accuracy on $test test images (10 class captions): $accuracy"
if [ "$quick" != 1 ]; then
    awk -v a="$accuracy" 'BEGIN { exit !(a >= 0.30) }' || fail "zero-shot accuracy $accuracy is below 0.30"
fi
