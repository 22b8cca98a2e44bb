#!/usr/bin/env bash
# tp-finetune data-parallel over MPI (docs/distributed.md), 2 ranks on this machine:
#   (a) every task kind -- classification, multi_label, regression, tagging, tagging with a CRF,
#       image classification (a small ViT on IDX images) -- trained for 2 epochs by 2 ranks with
#       batch 2 each logs the losses, dev and test scores of 1 rank with batch 4 (dropout off),
#       confusion matrices and counts equal, and keeps the same best-on-dev weights (per tensor, by
#       norm; tests/e2e/mpi_compare.py, numbers below 1 compared absolutely).  9 training examples
#       make the last batch of each epoch 1 row, so rank 1 has none there (a stand-in row that
#       counts nothing), and the dev and test sets (7 and 5) split unevenly over the ranks.
#       Tolerance 1e-5: the ranks' sums (gradients, losses) run in another order than one rank's,
#       each step's gradients differ by a few fp32 roundings (2^-24 = 6e-8 each), and 6 AdamW steps
#       carry that to the logged numbers; 1e-5 is ~160 roundings.  Correlations (regression's
#       Pearson and Spearman) 1e-3: they are computed from the predictions' deviations from their
#       mean, which after 6 steps spread over ~0.4% of the predictions' size (std 0.007 around 1.6
#       here), so a 1e-6 difference of the predictions becomes up to ~2.5e-4 in them.  Measured:
#       losses and scores within 2.2e-7, correlations 6.5e-6, weights within 1.3e-6 (attention key
#       biases and layer-norm shifts, whose gradients are sums of cancelling terms).  Discrete
#       scores (accuracy, confusion matrices, entity counts) must be equal: predictions are
#       gathered exactly;
#   (b) a 2-rank classification run for 8 epochs stopped by SIGTERM to rank 1 alone (both ranks
#       stop after the same epoch; rank 0 says why) and resumed equals the uninterrupted 2-rank
#       run bit for bit (metrics and final weights);
#   (c) continual mode on 2 ranks is refused with one message.
# TP_TEST_QUICK=1 (sanitizer builds) runs (a) for classification and tagging with a CRF only (the
# other kinds differ in their heads and inputs, not in the data-parallel code).
# Skipped when mpirun is missing or tp-finetune was built without MPI.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$repo/tests/e2e/mpi_common.sh" tp-finetune
build=$(cd "$build" && pwd)
cd "$work"

# ---- inputs: a 16-token vocabulary, TSV files of every kind, IDX images ----
printf '%s\n' '[PAD]' '[UNK]' '[CLS]' '[SEP]' '[MASK]' the cat sat on mat '##s' dog a . , run >vocab.txt
"$python" - <<'EOF'
import random, struct
r = random.Random(3)
words = "the cat sat on mat dog a run".split()
tags = ["O", "B-X", "I-X"]
def text():
    return [r.choice(words) for _ in range(r.randint(2, 6))]
labels = {
    "classification": lambda t: str(r.randrange(3)),
    "multi_label": lambda t: ",".join(sorted(r.sample("012", r.randint(1, 2)))),
    "regression": lambda t: str(t.count("cat") - t.count("dog")),  # learnable, mean near 0
    "tagging": lambda t: " ".join(r.choice(tags) for _ in t),
}
for kind, label in labels.items():
    for split, count in (("train", 9), ("dev", 7), ("test", 5)):
        with open(f"{kind}_{split}.tsv", "w") as f:
            f.write("label\ttext_a\n")
            rows = [text() for _ in range(count)]
            for i, t in enumerate(rows):
                # every class / tag in the training set
                line = label(t) if not (split == "train" and i < 3) else {
                    "classification": str(i), "multi_label": str(i), "regression": label(t),
                    "tagging": " ".join(tags[i] for _ in t)}[kind]
                f.write(f"{line}\t{' '.join(t)}\n")
for split, count in (("train", 9), ("dev", 7), ("test", 5)):
    pixels = bytes(r.randrange(256) for _ in range(count * 28 * 28))
    with open(f"{split}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, count, 28, 28) + pixels)
    with open(f"{split}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x801, count) + bytes(i % 3 for i in range(count)))
EOF
cat >text.json <<JSON
{ "model": "$repo/models/bert/tiny_config.json", "vocab_path": "vocab.txt", "epochs_num": 2, "seq_length": 12,
  "learning_rate": 1e-3, "report_steps": 1, "threads": 1, "dist_timeout": 60 }
JSON
cat >image.json <<JSON
{ "model": "$repo/models/vit/fashion_mnist_config.json", "train_path": "train-images-idx3-ubyte",
  "dev_path": "dev-images-idx3-ubyte", "test_path": "test-images-idx3-ubyte", "epochs_num": 2,
  "learning_rate": 1e-3, "report_steps": 1, "threads": 1, "dist_timeout": 60 }
JSON

# one_and_two NAME CONFIG ARGS...: 1 rank x batch 4 and 2 ranks x batch 2 into NAME_1 and NAME_2.
one_and_two() {
    local name=$1 config=$2
    shift 2
    local finetune=("$build/tp-finetune" --config "$config" --model.dropout 0 "$@")
    "${finetune[@]}" --batch_size 4 --output_dir "${name}_1" 2>"${name}_1.log" || fail "$name, 1 rank: $(tail -2 "${name}_1.log")"
    mpirun "${mpirun_flags[@]}" "${finetune[@]}" --batch_size 2 --output_dir "${name}_2" 2>"${name}_2.log" ||
        fail "$name, 2 ranks: $(tail -2 "${name}_2.log")"
}

# ---- (a) 2 ranks x batch 2 == 1 rank x batch 4, every kind ----
kinds=(classification multi_label regression tagging tagging_crf image)
[ "$quick" != 1 ] || kinds=(classification tagging_crf)
for kind in "${kinds[@]}"; do
    case $kind in
    image) args=(image.json) ;;
    tagging_crf) args=(text.json --task tagging --crf true --train_path tagging_train.tsv --dev_path tagging_dev.tsv \
        --test_path tagging_test.tsv) ;;
    *) args=(text.json --task "$kind" --train_path "${kind}_train.tsv" --dev_path "${kind}_dev.tsv" \
        --test_path "${kind}_test.tsv") ;;
    esac
    # [CLS]'s state hardly varies yet: mean pooling spreads the predictions Pearson divides by.
    [ "$kind" != regression ] || args+=(--pooling mean)
    one_and_two "$kind" "${args[@]}"
    grep -q "3 steps per epoch of 4 sequences (2 ranks)" "${kind}_2.log" || fail "$kind: no global batch of 4 in the log"
    [ "$(grep -c '"split":"test"' "${kind}_2/metrics.jsonl")" = 1 ] || fail "$kind: not one test line (rank 1 wrote?)"
    # Correlations: 1e-3 (see above); everything else 1e-5.
    for run in 1 2; do sed -E 's/,"(pearson|spearman)":[^,}]*//g' "${kind}_$run/metrics.jsonl" >"${kind}_$run.jsonl"; done
    for check in "${kind}_2.jsonl ${kind}_1.jsonl 1e-5" "${kind}_2/metrics.jsonl ${kind}_1/metrics.jsonl 1e-3"; do
        # shellcheck disable=SC2086 # the words of $check are the arguments
        compare metrics $check 1 || fail "$kind: 2 ranks' metrics differ from 1 rank's: $("$python" \
            "$repo/tests/e2e/mpi_compare.py" metrics $check 1 2>&1 | tail -1)"
    done
    best=$(cat "${kind}_1/best/latest")
    [ "$(cat "${kind}_2/best/latest")" = "$best" ] || fail "$kind: another epoch was best on 2 ranks"
    compare weights "${kind}_2/best/$best/model.safetensors" "${kind}_1/best/$best/model.safetensors" 1e-5 ||
        fail "$kind: 2 ranks' best weights differ from 1 rank's"
done

# ---- (b) SIGTERM to rank 1 alone, then --resume: the uninterrupted 2-rank run exactly ----
long=(text.json --task classification --train_path classification_train.tsv --dev_path classification_dev.tsv
      --epochs_num 8 --model.dropout 0 --batch_size 2)
mpirun "${mpirun_flags[@]}" "$build/tp-finetune" --config "${long[@]}" --output_dir whole 2>whole.log ||
    fail "8 epochs: $(tail -2 whole.log)"
mpirun "${mpirun_flags[@]}" "$build/tp-finetune" --config "${long[@]}" --output_dir stopped 2>stopped.log &
launcher=$!
wait_until epoch_saved stopped || fail "stop: no epoch finished: $(tail -2 stopped.log)"
for pid in $(pgrep -P "$launcher"); do
    tr '\0' '\n' <"/proc/$pid/environ" | grep -qx OMPI_COMM_WORLD_RANK=1 && kill -TERM "$pid"
done
wait "$launcher" || fail "stop: $(tail -2 stopped.log)"
grep -q "^stopped by a signal to another rank after epoch [0-9]*$" stopped.log ||
    fail "stop: rank 0 did not stop for rank 1's signal: $(tail -2 stopped.log)"
mpirun "${mpirun_flags[@]}" "$build/tp-finetune" --config "${long[@]}" --output_dir stopped --resume 2>>stopped.log ||
    fail "resume: $(tail -2 stopped.log)"
diff <(losses whole/metrics.jsonl | sed -E 's/,"wait_seconds":[^,}]*//') \
    <(losses stopped/metrics.jsonl | sed -E 's/,"wait_seconds":[^,}]*//') >diff.txt ||
    fail "resumed 2-rank metrics differ from the uninterrupted run: $(head -4 diff.txt)"
final=$(cat whole/checkpoints/latest)
cmp -s "whole/checkpoints/$final/model.safetensors" "stopped/checkpoints/$final/model.safetensors" ||
    fail "resumed 2-rank weights differ from the uninterrupted run"

# ---- (c) continual mode runs as one process ----
echo '{ "continual": "finetune", "tasks": "a,b", "output_dir": "continual" }' >continual.json
if mpirun "${mpirun_flags[@]}" "$build/tp-finetune" --config continual.json 2>continual.log; then
    fail "continual mode ran on 2 ranks"
fi
grep -q "tp-finetune: error: continual.json: key 'continual': continual mode runs as one process, not on 2 ranks" \
    continual.log || fail "continual on 2 ranks: unclear message: $(grep error continual.log | head -1)"
[ ! -e continual ] || fail "continual on 2 ranks: wrote continual/"
echo "test_mpi_finetune.sh: ${#kinds[@]} task kinds on 2 ranks == 1 rank, stop on one rank + resume exact, continual refused: 1 passed, 0 failed"
