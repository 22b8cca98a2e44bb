#!/usr/bin/env bash
# A small ViT (models/vit/fashion_mnist_config.json: 7-pixel patches, hidden 64, 2 layers) trained
# from scratch by tp-finetune on real Fashion-MNIST images, read straight from IDX files: the first
# 3000 training images for 3 epochs (282 steps of 32), scored on the first 1000 test images.  It
# must reach 30% test accuracy (chance: 10%) in seconds.  A ViT leaves its first plateau at a point
# that depends on the seed and on rounding: seeds 7, 8, 9 give 43, 53 and 62%, so the threshold
# keeps a margin.  The whole training set reaches the 85% the issue asks for in minutes
# (docs/media.md has the command and the number).  Also: a label<TAB>path list with an image cut short fails naming the list, its
# line and the image, and skip_bad_images leaves it out and says so.
source "$(dirname "$0")/common.sh"
fashion="$repo/data/media/fashion-mnist"
[ -f "$fashion/train-images-idx3-ubyte.gz" ] || fail "data missing: run scripts/fetch_data.sh"

train=3000 test=1000 epochs=3
[ "$quick" = 1 ] && train=300 test=100 epochs=1

# The first N images and labels of a gzip IDX pair, as plain IDX files with MNIST's names.
/usr/bin/python3 - "$fashion" "$work" "$train" "$test" <<'EOF'
import gzip, struct, sys
source, out, counts = sys.argv[1], sys.argv[2], {"train": int(sys.argv[3]), "t10k": int(sys.argv[4])}
for split, n in counts.items():
    for kind, item in (("images-idx3", 784), ("labels-idx1", 1)):
        data = gzip.open(f"{source}/{split}-{kind}-ubyte.gz").read()
        ndim = data[3]
        dims = list(struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim]))
        dims[0] = n
        header = data[:4] + struct.pack(f">{ndim}I", *dims)
        body = data[4 + 4 * ndim:4 + 4 * ndim + n * item]
        open(f"{out}/{split}-{kind}-ubyte", "wb").write(header + body)
EOF

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
