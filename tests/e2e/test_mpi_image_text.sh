#!/usr/bin/env bash
# The image-text models trained data-parallel over MPI (docs/distributed.md, docs/media.md "CLIP" and
# "ViLT"), 2 ranks on this machine, on 8 image-text pairs (the committed media images with short
# captions): CLIP (models/clip/tiny_config.json, tp-preprocess --data_processor clip) and ViLT
# (models/vilt/fashion_mnist_config.json, --data_processor vilt: masked texts, half the images another
# pair's), each
#   (a) 2 ranks with batch 2 each train as 1 rank with batch 4 for 6 steps (dropout off, 3 epochs
#       of 8 pairs): every logged number -- loss, accuracies, learning rate and the gradient norm
#       (before clipping at 1), which a wrong factor in the gradient of CLIP's gathered features
#       changes (the factor 1 instead of 2 halves the first step's norm, 33 -> 16, while without
#       clipping it moves the losses by only 3e-5: AdamW is scale-invariant per element) -- within
#       1e-5 relative (numbers below 1, the late gradient norms, absolutely), every weight tensor
#       within 1e-5 (tests/e2e/mpi_compare.py, Frobenius norms).  Measured for CLIP: losses within
#       2.5e-7, gradient norms 1.1e-6 (absolute), weights 2.2e-6 (layer-norm shifts); ViLT's masks
#       and mismatched images are drawn per pair, so that both runs see the same batches: metrics
#       within 4.7e-8, weights 2.3e-7;
#   (b) a 2-rank run resumed from its step-3 checkpoint logs the uninterrupted run's losses and ends
#       with its weights, bit for bit.
# Skipped when mpirun is missing or tp-pretrain was built without MPI.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$repo/tests/e2e/mpi_common.sh" tp-pretrain
build=$(cd "$build" && pwd)
cd "$work"

media_pairs
# check_model PROCESSOR CONFIG SEQ_LENGTH: (a) and (b) for one model in $work/PROCESSOR.
check_model() {
    local processor=$1 config=$2 seq_length=$3
    mkdir "$processor" && cd "$processor"
    "$build/tp-preprocess" --data_processor "$processor" --corpus_path ../pairs.tsv --config_path "$config" \
        --vocab_path ../vocab.txt --seq_length "$seq_length" --dataset_path pairs.tpimg 2>preprocess.log ||
        fail "$processor: tp-preprocess: $(tail -2 preprocess.log)"
    cat >run.json <<JSON
{
  "model": "$config",
  "vocab_path": "../vocab.txt",
  "dataset_path": "pairs.tpimg",
  "seq_length": $seq_length,
  "total_steps": 6,
  "learning_rate": 1e-3,
  "max_grad_norm": 1,
  "report_steps": 1,
  "save_checkpoint_steps": 3,
  "keep_checkpoints": 0,
  "threads": 1,
  "dist_timeout": 20
}
JSON
    local tp_pretrain=("$build/tp-pretrain" --config run.json)
    local tp_pretrain_2=(mpirun "${mpirun_flags[@]}" "${tp_pretrain[@]}" --batch_size 2)
    local final=checkpoints/step-00000006/model.safetensors

    # (a) 1 rank x batch 4 == 2 ranks x batch 2.
    "${tp_pretrain[@]}" --batch_size 4 --output_dir one 2>one.log || fail "$processor, 1 rank: $(tail -2 one.log)"
    "${tp_pretrain_2[@]}" --output_dir two 2>two.log || fail "$processor, 2 ranks: $(tail -2 two.log)"
    grep -q "4 sequences of $seq_length tokens per step (2 ranks)" two.log || fail "$processor, 2 ranks: no global batch of 4"
    compare metrics two/metrics.jsonl one/metrics.jsonl 1e-5 1 || fail "$processor, 2 ranks: metrics differ from 1 rank's"
    compare weights "two/$final" "one/$final" 1e-5 || fail "$processor, 2 ranks: weights differ from 1 rank's"

    # (b) resumed from the step-3 checkpoint on 2 ranks.
    cp -r two resumed
    rm -r resumed/checkpoints/step-00000006
    "${tp_pretrain_2[@]}" --output_dir resumed --resume 2>resume.log || fail "$processor, resume: $(tail -2 resume.log)"
    grep -q "resumed from step 3" resume.log || fail "$processor: did not resume from step 3: $(head -2 resume.log)"
    diff <(losses_2 two/metrics.jsonl) <(losses_2 resumed/metrics.jsonl) >diff.txt ||
        fail "$processor: resumed 2-rank losses differ from the uninterrupted run: $(head -4 diff.txt)"
    cmp -s "two/$final" "resumed/$final" || fail "$processor: resumed 2-rank weights differ from the uninterrupted run"
    cd ..
}
check_model clip "$repo/models/clip/tiny_config.json" 16
check_model vilt "$repo/models/vilt/fashion_mnist_config.json" 8
echo "test_mpi_image_text.sh: CLIP and ViLT on 2 ranks == 1 rank with twice the batch, resume exact: 2 passed, 0 failed"
