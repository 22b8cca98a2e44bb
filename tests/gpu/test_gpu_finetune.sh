#!/usr/bin/env bash
# tp-finetune, tp-infer and the seq2seq pre-training with `device: cuda` on small real tasks
# (tests/gpu/make_gpu_tasks.sh), each against the same run on the CPU from the same seed:
#   - fine-tuning: classification, multi-label, regression, tagging with the CRF head (tiny BERT
#     from scratch), text2text (tiny BART) and image classification (the Fashion-MNIST ViT, and a
#     BEiT of its size: relative position bias per layer, layer scale, mean pooling), one epoch
#     each, dropout on: every step's training loss and the dev loss within 2e-3 relative of the
#     CPU's (the tolerance of tests/gpu/test_gpu_train.c);
#   - tp-infer on the GPU with the CPU-trained weights: the same predicted labels (classification,
#     images) and probabilities within 1e-4, the same generated texts (text2text, greedy);
#   - tp-pretrain: tiny T5 (span corruption), tiny BART with label smoothing 0.1, a prefix LM
#     (causal_with_prefix mask): 10 steps, losses within 2e-3 relative.
# Without a GPU or a CUDA build: prints "skipped: ..." and passes.
# Usage: tests/gpu/test_gpu_finetune.sh BUILD_DIR [TASK_DIR]   (TASK_DIR: made here when absent)
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/common.sh"
tasks=${2:-${TP_GPU_TASKS:-}}
if [ -z "$tasks" ]; then
    tasks=$work/tasks
    bash "$repo/tests/gpu/make_gpu_tasks.sh" "$tasks" >/dev/null || fail "make_gpu_tasks.sh failed"
fi
tasks=$(cd "$tasks" && pwd)

# finetune_config NAME TASK MODEL VOCAB TRAIN DEV BATCH_SIZE SEQ_LENGTH [EXTRA JSON]
finetune_config() {
    cat >"$work/$1.json" <<JSON
{ "task": "$2", "model": "$3", "vocab_path": "$4", "train_path": "$5", "dev_path": "$6",
  "epochs_num": 1, "batch_size": $7, "seq_length": $8, "learning_rate": 1e-3, "adam_epsilon": 1e-8,
  "report_steps": 1, "seed": 7${9:+, $9} }
JSON
}
tiny_bert="$repo/models/bert/tiny_config.json"
finetune_config classification classification "$tiny_bert" "$vocab" "$tasks/classification/train.tsv" \
    "$tasks/classification/dev.tsv" 32 32
finetune_config multi_label multi_label "$tiny_bert" "$vocab" "$tasks/multi_label/train.tsv" \
    "$tasks/multi_label/dev.tsv" 32 32
finetune_config regression regression "$tiny_bert" "$vocab" "$tasks/regression/train.tsv" "$tasks/regression/dev.tsv" 32 32
finetune_config tagging tagging "$tiny_bert" "$vocab" "$tasks/tagging/train.tsv" "$tasks/tagging/dev.tsv" 16 48 \
    '"crf": true'
finetune_config text2text text2text "$repo/models/bart/tiny_config.json" "$tasks/text2text/vocab.txt" \
    "$tasks/text2text/train.tsv" "$tasks/text2text/dev.tsv" 32 12 '"tgt_seq_length": 12'
fashion=$tasks/fashion
cp "$repo/configs/vit_fashion_mnist.json" "$work/vit.json"
cp "$work/vit.json" "$work/beit.json"
image_options=(--train_path "$fashion/train-images-idx3-ubyte" --dev_path "$fashion/t10k-images-idx3-ubyte"
    --test_path "$fashion/t10k-images-idx3-ubyte" --epochs_num 1 --batch_size 32 --learning_rate 1e-3 --report_steps 1)
# BEiT's encoder keys (docs/media.md) on the Fashion-MNIST ViT's sizes: what its fine-tuning runs.
sed -e 's/"embedding": \["patch", "pos"\]/"embedding": ["masked_patch"], "relative_position_bias": "layer",\
  "layer_scale_init": 0.1, "final_layernorm": false, "pooling": "patch_mean", "pooled_layernorm": true/' \
    "$repo/models/vit/fashion_mnist_config.json" >"$work/beit_config.json"
grep -q relative_position_bias "$work/beit_config.json" || fail "the BEiT config was not made"

finetune() { # NAME DEVICE
    local options=()
    [ "$1" = vit ] && options=(--model "$repo/models/vit/fashion_mnist_config.json" "${image_options[@]}")
    [ "$1" = beit ] && options=(--model "$work/beit_config.json" "${image_options[@]}")
    "$build/tp-finetune" --config "$work/$1.json" --device "$2" --output_dir "$work/$1_$2" "${options[@]}" \
        2>"$work/$1_$2.log"
}
if ! finetune classification cuda; then
    if grep -q "no CUDA device\|no CUDA backend" "$work/classification_cuda.log"; then
        echo "skipped: $(tail -1 "$work/classification_cuda.log")"
        exit 0
    fi
    fail "classification on the GPU: $(tail -3 "$work/classification_cuda.log")"
fi

# loss_lines METRICS: "step loss" of every training step, then "dev loss" of the dev evaluation.
loss_lines() {
    sed -nE -e '/"split"/!s/.*"step":([0-9]+),"loss":([-0-9.e+]+).*/\1 \2/p' \
        -e '/"split":"dev"/s/.*"loss":([-0-9.e+]+).*/dev \1/p' "$1"
}
# compare_losses NAME CPU_METRICS GPU_METRICS: relative differences within 2e-3.
compare_losses() {
    local table
    table=$(join <(loss_lines "$2") <(loss_lines "$3"))
    [ -n "$table" ] || fail "$1: no losses to compare"
    [ "$(wc -l <<<"$table")" = "$(loss_lines "$2" | wc -l)" ] || fail "$1: the runs logged different steps"
    awk -v name="$1" '{ d = ($3 - $2) / ($2 == 0 ? 1 : $2); if (d < 0) d = -d; if (d > worst) worst = d
                        if (d > 2e-3) { printf "%s: %s cpu %s gpu %s rel %.3g  FAIL\n", name, $1, $2, $3, d; bad = 1 } }
        END { printf "%-15s %3d losses, worst relative difference %.3g\n", name, NR, worst; exit bad }' <<<"$table" ||
        fail "$1: GPU losses differ from the CPU's"
}
for name in classification multi_label regression tagging text2text vit beit; do
    [ "$name" = classification ] || finetune "$name" cuda || fail "$name on the GPU: $(tail -3 "$work/${name}_cuda.log")"
    finetune "$name" cpu || fail "$name on the CPU: $(tail -3 "$work/${name}_cpu.log")"
    grep -q "; device cuda" "$work/${name}_cuda.log" || fail "$name: the GPU run did not report device cuda"
    compare_losses "$name" "$work/${name}_cpu/metrics.jsonl" "$work/${name}_cuda/metrics.jsonl"
done

# ---- tp-infer on the GPU with the CPU-trained weights ----
infer() { # NAME DEVICE TEST_PATH [OPTIONS...]
    local name=$1 device=$2 test_path=$3
    shift 3
    "$build/tp-infer" --checkpoint "$work/${name}_cpu" --test_path "$test_path" --device "$device" \
        --prediction_path "$work/${name}_infer_$device.tsv" "$@" 2>"$work/${name}_infer_$device.log" ||
        fail "tp-infer $name on $device: $(tail -3 "$work/${name}_infer_$device.log")"
    grep -q "on device $device" "$work/${name}_infer_$device.log" || fail "tp-infer $name did not report device $device"
}
# same_predictions NAME: the first column equal, the others (probabilities) within 1e-4.
same_predictions() {
    paste "$work/$1_infer_cpu.tsv" "$work/$1_infer_cuda.tsv" | awk -F'\t' -v name="$1" '
        NR == 1 { columns = NF / 2; next }
        { rows++; if ($1 != $(columns + 1)) { print name ": row " NR ": " $1 " vs " $(columns + 1); bad = 1 }
          for (c = 2; c <= columns; c++) { n = split($c, a, ","); split($(c + columns), b, ",")
              for (i = 1; i <= n; i++) { d = a[i] - b[i]; if (d < 0) d = -d; if (d > worst) worst = d } } }
        END { printf "%-15s %3d predictions identical, worst probability difference %.3g\n", name, rows, worst
              exit bad || rows == 0 || worst > 1e-4 }' || fail "$1: tp-infer on the GPU predicts otherwise"
}
for device in cpu cuda; do
    infer classification "$device" "$tasks/classification/dev.tsv" --output_prob
    infer text2text "$device" "$tasks/text2text/dev.tsv"
    infer vit "$device" "$fashion/t10k-images-idx3-ubyte" --output_prob
    infer beit "$device" "$fashion/t10k-images-idx3-ubyte" --output_prob
done
for name in classification text2text vit beit; do same_predictions "$name"; done

# ---- seq2seq pre-training ----
preprocess() { # NAME PROCESSOR CORPUS [OPTIONS...]
    local name=$1 processor=$2 corpus_path=$3
    shift 3
    "$build/tp-preprocess" --corpus_path "$corpus_path" --vocab_path "$tasks/seq2seq/vocab.txt" \
        --dataset_path "$work/$name.tpd" --data_processor "$processor" --seq_length 32 --dup_factor 1 "$@" \
        2>"$work/pre_$name.log" || fail "tp-preprocess $name: $(tail -2 "$work/pre_$name.log")"
}
pretrain() { # NAME DEVICE MODEL_CONFIG [OPTIONS...]
    local name=$1 device=$2 model=$3
    shift 3
    "$build/tp-pretrain" --config "$repo/configs/t5_tiny.json" --model "$model" --vocab_path "$tasks/seq2seq/vocab.txt" \
        --dataset_path "$work/$name.tpd" --output_dir "$work/${name}_$device" --device "$device" --total_steps 10 \
        --save_checkpoint_steps 0 --report_steps 1 --batch_size 8 --seq_length 32 --learning_rate 1e-3 "$@" \
        2>"$work/${name}_$device.log" || fail "tp-pretrain $name on $device: $(tail -3 "$work/${name}_$device.log")"
}
preprocess t5 t5 "$tasks/seq2seq/corpus.txt" --span_masking --span_geo_prob 0.3 --span_max_length 5
preprocess bart bart "$tasks/seq2seq/corpus.txt"
preprocess prefixlm prefixlm "$tasks/seq2seq/pairs.txt"
sed -e 's/"mask": "causal"/"mask": "causal_with_prefix"/' -e 's/"data_processor": "lm"/"data_processor": "prefixlm"/' \
    "$repo/models/gpt2/tiny_config.json" >"$work/prefixlm_config.json"
for device in cpu cuda; do
    pretrain t5 "$device" "$repo/models/t5/tiny_config.json"
    pretrain bart "$device" "$repo/models/bart/tiny_config.json" --model.label_smoothing 0.1
    pretrain prefixlm "$device" "$work/prefixlm_config.json"
done
for name in t5 bart prefixlm; do
    compare_losses "$name" "$work/${name}_cpu/metrics.jsonl" "$work/${name}_cuda/metrics.jsonl"
done
echo "test_gpu_finetune: passed"
