#!/usr/bin/env bash
# A small ViT (models/vit/fashion_mnist_config.json: 7-pixel patches, hidden 64, 2 layers) trained
# from scratch by tp-finetune on real Fashion-MNIST images, read straight from IDX files: the first
# 3000 training images for 3 epochs (282 steps of 32), scored on the first 1000 test images.  It
# must reach 30% test accuracy (chance: 10%) in seconds.  A ViT leaves its first plateau at a point
# that depends on the seed and on rounding: seeds 7, 8, 9 give 43, 53 and 62%, so the threshold
# keeps a margin.  The whole training set reaches the 85% the issue asks for in minutes
# (docs/media.md has the command and the number).  Also: a label<TAB>path list with an image cut short fails naming the list, its
# line and the image, and skip_bad_images leaves it out and says so.
# image_preprocess's crops and flips change the training losses and are the same in two runs.
# Pre-decoded files and tp-infer: tp-preprocess --data_processor vit writes the training and test
# images as pre-decoded files; training on them gives the IDX run's metrics exactly; tp-infer on the
# trained checkpoint predicts the same labels and logits from the IDX file, the pre-decoded file
# and PNG files of the same images (a label<TAB>path list), reports the test accuracy tp-finetune
# reported, and its --dump holds the hidden states and the logits it printed.
source "$(dirname "$0")/common.sh"
fashion="$repo/data/media/fashion-mnist"
[ -f "$fashion/train-images-idx3-ubyte.gz" ] || fail "data missing: run scripts/fetch_data.sh"

train=3000 test=1000 epochs=3
[ "$quick" = 1 ] && train=300 test=100 epochs=1

/usr/bin/python3 "$repo/scripts/cut_fashion_mnist.py" "$fashion" "$work" "$train" "$test"

"$build/tp-finetune" --config "$repo/configs/vit_fashion_mnist.json" --model "$repo/models/vit/fashion_mnist_config.json" \
    --train_path "$work/train-images-idx3-ubyte" --dev_path "$work/t10k-images-idx3-ubyte" \
    --test_path "$work/t10k-images-idx3-ubyte" --output_dir "$work/run" --epochs_num "$epochs" \
    --learning_rate 1e-3 --batch_size 32 --threads 1 \
    >"$work/log" 2>&1 || { cat "$work/log" >&2; fail "tp-finetune failed"; }
accuracy=$(grep '"split":"test"' "$work/run/metrics.jsonl" | sed -E 's/.*"accuracy":([0-9.]+).*/\1/')
[ -n "$accuracy" ] || fail "no test accuracy in $work/run/metrics.jsonl"
echo "ViT on $train Fashion-MNIST images, $epochs epochs: test accuracy $accuracy on $test images"
grep -q '"task":[[:space:]]*"classification"' "$work/run/best/task.json" || fail "best/task.json lacks the task"
if [ "$quick" != 1 ]; then
    awk -v a="$accuracy" 'BEGIN { exit !(a >= 0.30) }' || fail "test accuracy $accuracy is below 0.30"
fi

# The same images pre-decoded: the same training, bit for bit.
for split in train t10k; do
    "$build/tp-preprocess" --data_processor vit --corpus_path "$work/$split-images-idx3-ubyte" \
        --config_path "$repo/models/vit/fashion_mnist_config.json" --dataset_path "$work/$split.tpimg" \
        2>"$work/pre.log" || { cat "$work/pre.log" >&2; fail "tp-preprocess --data_processor vit failed"; }
done
"$build/tp-finetune" --config "$repo/configs/vit_fashion_mnist.json" --model "$repo/models/vit/fashion_mnist_config.json" \
    --train_path "$work/train.tpimg" --dev_path "$work/t10k.tpimg" --test_path "$work/t10k.tpimg" \
    --output_dir "$work/run_pre" --epochs_num "$epochs" --learning_rate 1e-3 --batch_size 32 --threads 1 \
    >"$work/log" 2>&1 || { cat "$work/log" >&2; fail "tp-finetune on pre-decoded files failed"; }
[ "$(losses "$work/run/metrics.jsonl")" = "$(losses "$work/run_pre/metrics.jsonl")" ] ||
    fail "training on the pre-decoded files differs from training on the IDX files"
echo "pre-decoded files: the same metrics as the IDX run"

# image_preprocess's crops and flips (core/image_augment.h): other training losses than the plain
# run's, the same in two runs; the dev and test images are not augmented.
augmented() {
    "$build/tp-finetune" --config "$repo/configs/vit_fashion_mnist.json" --model "$repo/models/vit/fashion_mnist_config.json" \
        --model.image_preprocess '["crop", "horizontal_flip", "normalize"]' --train_path "$work/train.tpimg" \
        --dev_path "$work/t10k.tpimg" --epochs_num 1 --learning_rate 1e-3 --batch_size 32 --threads 1 --output_dir "$1" \
        >"$work/log" 2>&1 || { cat "$work/log" >&2; fail "tp-finetune with image_preprocess failed"; }
}
augmented "$work/augmented" && augmented "$work/augmented_again"
[ "$(losses "$work/augmented/metrics.jsonl")" = "$(losses "$work/augmented_again/metrics.jsonl")" ] ||
    fail "two runs with image_preprocess differ"
first_loss() { grep -m1 '"step"' "$1" | grep -oE '"loss":[0-9.e+-]+'; }
plain=$(first_loss "$work/run_pre/metrics.jsonl") cropped=$(first_loss "$work/augmented/metrics.jsonl")
[ -n "$plain" ] && [ -n "$cropped" ] || fail "no training loss in the metrics"
[ "$plain" != "$cropped" ] || fail "image_preprocess did not change the training losses ($plain)"
echo "image_preprocess: crops and flips change the training losses, the same in two runs"

# tp-infer on the checkpoint: the IDX file, the pre-decoded file and PNG files of the first 50 test
# images give the same predictions.
/usr/bin/python3 - "$work" <<'EOF'
import sys
from PIL import Image
work = sys.argv[1]
data = open(f"{work}/t10k-images-idx3-ubyte", "rb").read()
labels = open(f"{work}/t10k-labels-idx1-ubyte", "rb").read()[8:]
with open(f"{work}/pngs.tsv", "w") as out:
    out.write("label\tpath\n")
    for i in range(50):
        path = f"{work}/png{i}.png"
        Image.frombytes("L", (28, 28), data[16 + 784 * i:16 + 784 * (i + 1)]).save(path)
        out.write(f"{labels[i]}\t{path}\n")
EOF
infer() {
    "$build/tp-infer" --checkpoint "$work/run" --test_path "$1" --prediction_path "$2" --output_logits --threads 1 "${@:3}"
}
infer "$work/t10k-images-idx3-ubyte" "$work/idx.tsv" 2>"$work/infer.log" ||
    { cat "$work/infer.log" >&2; fail "tp-infer on the IDX file failed"; }
infer "$work/t10k.tpimg" "$work/pre.tsv" 2>/dev/null || fail "tp-infer on the pre-decoded file failed"
infer "$work/pngs.tsv" "$work/png.tsv" 2>/dev/null || fail "tp-infer on PNG files failed"
# --dump has the last layer compute every row (the hidden states), not only the class tokens.
infer "$work/t10k-images-idx3-ubyte" "$work/dumped.tsv" --dump "$work/dump.safetensors" 2>/dev/null ||
    fail "tp-infer --dump failed"
cmp -s "$work/idx.tsv" "$work/pre.tsv" || fail "predictions from the IDX and the pre-decoded file differ"
same_predictions() { # A B: the same labels, logits within 1e-5 (products of other shapes round differently)
    paste <(head -n "$(wc -l <"$2")" "$1") "$2" | awk -F'\t' 'NR > 1 { if ($1 != $3) exit 1; n = split($2, a, " ");
        split($4, b, " "); for (i = 1; i <= n; i++) if (a[i] - b[i] > 1e-5 || b[i] - a[i] > 1e-5) exit 1 }'
}
# The PNG run's last batch is smaller.
same_predictions "$work/idx.tsv" "$work/png.tsv" || fail "predictions from PNG files differ from IDX's"
same_predictions "$work/idx.tsv" "$work/dumped.tsv" || fail "predictions with --dump differ from those without"
[ "$(wc -l <"$work/idx.tsv")" = $((test + 1)) ] || fail "$work/idx.tsv: not one line per test image"
best_test=$(grep '"split":"test"' "$work/run/metrics.jsonl" | tail -1 | sed -E 's/.*"accuracy":([0-9.]+).*/\1/')
infer_accuracy=$(grep -oE 'acc(uracy)?[ :=]+[0-9.]+' "$work/infer.log" | head -1 | grep -oE '[0-9.]+$')
awk -v a="$infer_accuracy" -v b="$best_test" 'BEGIN { exit !(a - b < 1e-4 && b - a < 1e-4) }' ||
    { cat "$work/infer.log" >&2; fail "tp-infer's accuracy $infer_accuracy is not tp-finetune's test accuracy $best_test"; }
/usr/bin/python3 - "$work" "$test" <<'EOF' || fail "the --dump does not hold the hidden states and the printed logits"
import json, struct, sys
import numpy as np
work, count = sys.argv[1], int(sys.argv[2])
raw = open(f"{work}/dump.safetensors", "rb").read()
size = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + size])
def tensor(name):
    entry = header[name]
    begin, end = entry["data_offsets"]
    return np.frombuffer(raw[8 + size + begin:8 + size + end], dtype=np.float32).reshape(entry["shape"])
assert "input_ids" not in header
assert tensor("hidden").shape == (count, 17, 64), tensor("hidden").shape
logits = tensor("target.cls.logits")
printed = np.array([[float(v) for v in line.split("\t")[1].split()] for line in open(f"{work}/dumped.tsv").readlines()[1:]])
assert logits.shape == printed.shape == (count, 10) and np.abs(logits - printed).max() < 1e-6
EOF
echo "tp-infer: IDX, pre-decoded and PNG inputs give the same predictions; test accuracy $infer_accuracy as tp-finetune's; --dump checked"

# A list whose second image is cut short.
mkdir -p "$work/images"
media="$repo/tests/fixtures/media"
head -c 700 "$media/s444.jpg" >"$work/images/cut.jpg"
printf 'label\tpath\n1\t%s\n0\t%s\n1\t%s\n' "$media/gray.jpg" "$work/images/cut.jpg" "$media/s422.jpg" >"$work/list.tsv"
run_list() {
    "$build/tp-finetune" --config "$repo/configs/vit_fashion_mnist.json" --train_path "$work/list.tsv" \
        --dev_path "$work/list.tsv" --test_path "$work/list.tsv" --output_dir "$work/list_run" --epochs_num 1 --threads 1 "$@"
}
if run_list >"$work/list.log" 2>&1; then fail "a truncated image was accepted"; fi
grep -q "list.tsv: line 3: $work/images/cut.jpg: JPEG: " "$work/list.log" ||
    { cat "$work/list.log" >&2; fail "the error does not name the list, the line and the image"; }
rm -rf "$work/list_run"
run_list --skip_bad_images true >"$work/list.log" 2>&1 || { cat "$work/list.log" >&2; fail "skip_bad_images failed"; }
grep -q "list.tsv: skipped 1 images that could not be decoded" "$work/list.log" || fail "the skipped image is not reported"
echo "truncated image: refused naming list, line and image; skipped and counted with skip_bad_images"
