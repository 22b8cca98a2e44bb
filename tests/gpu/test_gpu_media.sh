#!/usr/bin/env bash
# The image-text models with `device: cuda` against the same runs on the CPU, on 8 image-text pairs
# (the committed media images with short captions, as tests/e2e/test_mpi_image_text.sh):
#   - CLIP (models/clip/tiny_config.json, the clr target) and ViLT (models/vilt/fashion_mnist_config.json:
#     masked captions, half the images another pair's, image_preprocess's crops and flips), 10 steps
#     of 4 pairs each: the per-step losses on the GPU equal the CPU's within 2e-3 relative (the
#     tolerance of test_gpu_programs.sh); the batches are made on the host, the same for both;
#   - zero-shot classification of the 8 images against their 8 captions by the trained ViLT (tp-infer,
#     the sp target's log-odds): the GPU's scores within 1e-3 of the CPU's (absolute).
# Without a GPU or a CUDA build: prints "skipped: ..." and passes.
# Usage: tests/gpu/test_gpu_media.sh BUILD_DIR   (ctest passes it; tests/gpu/run.sh runs it as a stage)
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/common.sh"
build=$(cd "$build" && pwd)
cd "$work"
media_pairs
tail -n +2 pairs.tsv | cut -f1 >captions.txt

# pretrain_pairs PROCESSOR CONFIG SEQ_LENGTH DEVICE OUT [ARGS...]
pretrain_pairs() {
    local processor=$1 config=$2 seq=$3 device=$4 out=$5
    shift 5
    [ -f "$processor.tpimg" ] || "$build/tp-preprocess" --data_processor "$processor" --corpus_path pairs.tsv \
        --config_path "$config" --vocab_path vocab.txt --seq_length "$seq" --dataset_path "$processor.tpimg" \
        2>"$processor.preprocess.log" || fail "tp-preprocess $processor: $(tail -2 "$processor.preprocess.log")"
    cat >"$processor.json" <<JSON
{ "model": "$config", "vocab_path": "vocab.txt", "dataset_path": "$processor.tpimg", "seq_length": $seq,
  "batch_size": 4, "total_steps": 10, "learning_rate": 1e-3, "report_steps": 1, "save_checkpoint_steps": 0 }
JSON
    "$build/tp-pretrain" --config "$processor.json" --device "$device" --output_dir "$out" "$@" 2>"$out.log"
}

vilt_config="$repo/models/vilt/fashion_mnist_config.json"
if ! pretrain_pairs vilt "$vilt_config" 8 cuda probe --total_steps 1; then
    if grep -q "no CUDA device\|no CUDA backend" probe.log; then
        echo "skipped: $(tail -1 probe.log)"
        exit 0
    fi
    fail "probe run: $(tail -3 probe.log)"
fi

# The loss of every step, one per line.
step_losses() { grep -oE '"loss":[0-9.e+-]+' "$1/metrics.jsonl" | cut -d: -f2; }
compare_losses() {
    paste <(step_losses "$1") <(step_losses "$2") | awk '
        { d = ($2 - $1) / $1; if (d < 0) d = -d
          printf "%4d %12.6f %12.6f %10.3g%s\n", NR, $1, $2, d, d <= 2e-3 ? "" : "  FAIL"; if (d > 2e-3) bad = 1 }
        END { exit bad || NR != 10 }'
}

augment=(--model.image_preprocess '["crop", "horizontal_flip", "normalize"]')
for model in clip vilt; do
    if [ $model = clip ]; then config="$repo/models/clip/tiny_config.json" seq=16 extra=(); else config=$vilt_config seq=8 extra=("${augment[@]}"); fi
    pretrain_pairs $model "$config" $seq cpu "${model}_cpu" "${extra[@]}" || fail "$model on the CPU: $(tail -3 "${model}_cpu.log")"
    pretrain_pairs $model "$config" $seq cuda "${model}_gpu" "${extra[@]}" || fail "$model on the GPU: $(tail -3 "${model}_gpu.log")"
    grep -q "device cuda" "${model}_gpu.log" || fail "$model: the GPU run did not report device cuda"
    echo "$model: step     cpu loss     gpu loss   rel diff"
    compare_losses "${model}_cpu" "${model}_gpu" || fail "$model: GPU losses differ from the CPU's"
done

# ViLT zero-shot: the GPU's scores are the CPU's.
for device in cpu cuda; do
    "$build/tp-infer" --checkpoint vilt_cpu --test_path vilt.tpimg --candidates_path captions.txt --vocab_path vocab.txt \
        --device $device --output_logits --prediction_path "zero_shot_$device.tsv" 2>"zero_shot_$device.log" ||
        fail "tp-infer on $device: $(tail -3 "zero_shot_$device.log")"
done
paste <(tail -n +2 zero_shot_cpu.tsv | cut -f2 | tr ' ' '\n') <(tail -n +2 zero_shot_cuda.tsv | cut -f2 | tr ' ' '\n') |
    awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > worst) worst = d } END { printf "ViLT zero-shot: worst |cpu - gpu| %.3g over %d scores\n", worst, NR; exit !(NR == 64 && worst <= 1e-3) }' ||
    fail "ViLT zero-shot scores on the GPU differ from the CPU's"
echo "test_gpu_media: passed"
