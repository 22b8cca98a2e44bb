#!/usr/bin/env bash
# The real demonstration of tp-select (docs/select.md, "Real demonstration"): a zoo of 12 small
# models built by tp itself, six benchmark tasks from real labelled text, and leave-one-out model
# selection with real training on every benchmark.
#
#   1. tasks (scripts/make_select_task.sh): benchmarks fort-a, fort-b, fort-c (which fortune
#      category a quote is from) and pkg-lang, pkg-ui, pkg-role (which debtag of a facet a Debian
#      package carries, from its description); source tasks fort-src, pkg-use, pkg-works
#   2. three tiny BERTs (2 layers, hidden 64) pre-trained by tp-pretrain on disjoint real corpora:
#      the Python documentation, the fortune categories no task uses, and the descriptions of the
#      packages without debtags; plus the same architecture from random initialisation
#   3. the zoo: each of the 4 bases fine-tuned on each of the 3 source tasks (heads kept for LEEP)
#   4. the offline phase (tp-select build): every model on every benchmark for E epochs
#   5. the replay of the logged curves (tp-select simulate), all five strategies, every target
#   6. for every target, with real training: two-phase selection and plain successive halving
#      (tp-select select); brute force is the offline phase's column of the target (the same runs)
#   7. seed noise: brute force's choice fine-tuned on each target with two more seeds
#   8. report.md: per target the speed-ups, whether two-phase chose brute force's model (or one
#      within seed noise of it), its regret, the recall hit; totals
# Every step skips what an earlier run of the script finished (rerun it after an interruption).
# Usage: scripts/select_demo.sh BUILD_DIR OUT_DIR
#   TP_SELECT_DEMO_STEPS (pre-training steps per base, 400), TP_SELECT_DEMO_EPOCHS (E, 3),
#   TP_SELECT_DEMO_QUICK=1 (a smoke run of the plumbing: 5 steps, E = 2, tasks of 20 / 10 / 10
#   examples per class; its numbers mean nothing)
set -euo pipefail
build=$(cd "${1:?usage: select_demo.sh BUILD_DIR OUT_DIR}" && pwd)
mkdir -p "${2:?usage: select_demo.sh BUILD_DIR OUT_DIR}"
out=$(cd "$2" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
vocab="$repo/data/vocab/bert-base-uncased-vocab.txt"
steps=${TP_SELECT_DEMO_STEPS:-400}
epochs=${TP_SELECT_DEMO_EPOCHS:-3}
train=100 eval=50 source_train=150 source_eval=25
if [ "${TP_SELECT_DEMO_QUICK:-0}" = 1 ]; then
    steps=5 epochs=2 train=20 eval=10 source_train=20 source_eval=10
fi
benchmarks=(fort-a fort-b fort-c pkg-lang pkg-ui pkg-role)
sources=(fort-src pkg-use pkg-works)
bases=(pydoc fortunes debian scratch)
recall_options=(--k 3 --tau 0.09 --top 6)
python=/usr/bin/python3
log() { echo "select_demo.sh: $(date +%H:%M:%S) $*" >&2; }
[ -f "$vocab" ] || { echo "select_demo.sh: $vocab missing: run scripts/fetch_data.sh" >&2; exit 1; }
started=$SECONDS

# ---- 1. tasks ----
task() { # DIR NAME KIND TRAIN EVAL CLASS...
    local dir=$1/$2
    shift 2
    [ -f "$dir/test.tsv" ] || bash "$repo/scripts/make_select_task.sh" "$dir" "$@" >&2
}
task "$out/tasks" fort-a fortunes "$train" "$eval" computers politics science men-women
task "$out/tasks" fort-b fortunes "$train" "$eval" people definitions cookie songs-poems
task "$out/tasks" fort-c fortunes "$train" "$eval" work zippy knghtbrd platitudes
task "$out/tasks" pkg-lang debtags "$train" "$eval" implemented-in::perl implemented-in::c implemented-in::c++ implemented-in::python
task "$out/tasks" pkg-ui debtags "$train" "$eval" uitoolkit::gtk uitoolkit::qt uitoolkit::ncurses uitoolkit::sdl
task "$out/tasks" pkg-role debtags "$train" "$eval" role::program role::shared-lib role::devel-lib role::documentation
task "$out/sources" fort-src fortunes "$source_train" "$source_eval" art wisdom linux perl
task "$out/sources" pkg-use debtags "$source_train" "$source_eval" use::gameplaying use::converting use::editing use::viewing
task "$out/sources" pkg-works debtags "$source_train" "$source_eval" works-with::text works-with::audio works-with::image works-with::video

# ---- 2. pre-trained bases ----
cat >"$out/model.json" <<JSON
{ "emb_size": 64, "feedforward_size": 256, "hidden_size": 64, "hidden_act": "gelu", "heads_num": 2, "layers_num": 2,
  "max_seq_length": 128, "dropout": 0.1, "data_processor": "bert", "embedding": ["word", "pos", "seg"],
  "encoder": "transformer", "mask": "fully_visible", "target": ["mlm", "sp"], "tie_weights": true }
JSON
mkdir -p "$out/corpora"
[ -f "$out/corpora/pydoc.txt" ] || head -c 1500000 "$repo/data/corpus/pretrain.txt" >"$out/corpora/pydoc.txt"
if [ ! -f "$out/corpora/fortunes.txt" ]; then
    # Quotes of the categories no task uses: one document per quote, its lines as sentences.
    for category in miscellaneous humorists ethnic love kids sports linuxcookie debian tao medicine paradoxum goedel \
        news pets magic disclaimer food startrek drugs law education; do
        awk '$0 == "%" { print ""; next } { gsub(/[\t ]+/, " "); sub(/^ /, ""); if (length($0)) print }' \
            "$repo/data/corpus/fortunes/$category"
        echo
    done | cat -s >"$out/corpora/fortunes.txt"
fi
if [ ! -f "$out/corpora/debian.txt" ]; then
    # Descriptions of the packages without debtags (no task sees them), eight to a document.
    awk -F'\t' '$3 == "" && length($4) >= 10 { print $4; if (++n % 8 == 0) print "" }' \
        "$repo/data/corpus/debian-packages.tsv" >"$out/corpora/debian.txt"
fi
for base in pydoc fortunes debian; do
    dir="$out/bases/$base"
    [ -f "$dir/checkpoints/latest" ] && continue
    log "pre-training $base ($steps steps)"
    mkdir -p "$dir"
    "$build/tp-preprocess" --corpus_path "$out/corpora/$base.txt" --vocab_path "$vocab" --dataset_path "$dir/data.tpd" \
        --data_processor bert --seq_length 64 --dup_factor 1 --dynamic_masking 2>"$dir/preprocess.log"
    cat >"$dir/pretrain.json" <<JSON
{ "model": "$out/model.json", "vocab_path": "$vocab", "dataset_path": "$dir/data.tpd", "output_dir": "$dir",
  "batch_size": 32, "seq_length": 64, "total_steps": $steps, "learning_rate": 1e-3, "correct_bias": true,
  "warmup": 0.05, "scheduler": "linear", "seed": 7, "report_steps": 25, "save_checkpoint_steps": 0, "threads": 1 }
JSON
    "$build/tp-pretrain" --config "$dir/pretrain.json" 2>"$dir/pretrain.log"
    grep '^step' "$dir/pretrain.log" | tail -1 >&2
done

# ---- 3. the zoo: 4 bases x 3 source tasks, heads kept ----
cat >"$out/finetune.json" <<JSON
{ "vocab_path": "$vocab", "batch_size": 16, "seq_length": 48, "learning_rate": 1e-3, "pooling": "mean", "seed": 7,
  "threads": 1, "report_steps": 1000, "keep_checkpoints": 1 }
JSON
models=()
for base in "${bases[@]}"; do
    weights=()
    [ "$base" = scratch ] || weights=(--pretrained_model_path "$out/bases/$base/checkpoints/$(cat "$out/bases/$base/checkpoints/latest")/model.safetensors")
    for source in "${sources[@]}"; do
        name="$base-$source" dir="$out/zoo_models/$base-$source"
        if [ ! -f "$dir/best/latest" ]; then
            log "source fine-tuning $name"
            rm -rf "$dir" && mkdir -p "$out/zoo_models"
            "$build/tp-finetune" --config "$out/finetune.json" --model "$out/model.json" "${weights[@]}" --epochs_num 3 \
                --train_path "$out/sources/$source/train.tsv" --dev_path "$out/sources/$source/dev.tsv" --output_dir "$dir" \
                --scheduler constant 2>"$dir.log"
        fi
        models+=("{\"name\": \"$name\", \"checkpoint\": \"$dir/best/$(cat "$dir/best/latest")/model.safetensors\",
  \"config\": \"$out/model.json\", \"head\": {\"task\": \"$source\", \"labels\": 4}}")
    done
done
mkdir -p "$out/zoo"
if [ ! -f "$out/zoo/curves.tsv" ]; then
    (IFS=,; echo "{\"format\": \"tp-select-zoo\", \"version\": 1, \"description\": \"scripts/select_demo.sh\",
  \"epochs\": $epochs, \"matrix\": \"matrix.tsv\", \"models\": [${models[*]}]}") >"$out/zoo/zoo.json"
    # ---- 4. the offline phase ----
    log "offline phase: ${#models[@]} models x ${#benchmarks[@]} benchmarks x $epochs epochs"
    rm -rf "$out/offline"
    "$build/tp-select" build --zoo "$out/zoo/zoo.json" --tasks "$out/tasks" --finetune "$out/finetune.json" \
        --work "$out/offline" --output "$out/build.json" 2>"$out/build.log"
fi
common=(--zoo "$out/zoo/zoo.json" "${recall_options[@]}")

# ---- 5. the replay of the logged curves ----
"$build/tp-select" simulate "${common[@]}" --output "$out/simulate.json"
"$build/tp-select" cluster --zoo "$out/zoo/zoo.json" --k 3 --tau 0.09 --output "$out/cluster.json"

# ---- 6. real selection on every target; 7. seed noise ----
for target in "${benchmarks[@]}"; do
    for strategy in two_phase successive_halving; do
        result="$out/select/$target.$strategy.json"
        [ -f "$result" ] && continue
        log "select $target ($strategy, real training)"
        mkdir -p "$out/select"
        rm -rf "$out/online/$strategy/$target"
        "$build/tp-select" select "${common[@]}" --target "$target" --strategy "$strategy" --tasks "$out/tasks" \
            --finetune "$out/finetune.json" --work "$out/online/$strategy" --output "$result" \
            2>"$out/select/$target.$strategy.log"
    done
    chosen=$($python -c 'import json, sys; print(json.load(open(sys.argv[1]))["targets"][0]["strategies"]["brute_force"]["chosen"])' \
        <("$build/tp-select" simulate "${common[@]}" --target "$target"))
    for seed in 8 9; do
        dir="$out/noise/$target/seed$seed"
        [ -f "$dir/done" ] && continue
        log "seed noise: $chosen on $target, seed $seed"
        rm -rf "$dir"
        mkdir -p "$dir"
        "$build/tp-finetune" --config "$out/finetune.json" --model "$out/model.json" --seed "$seed" --epochs_num "$epochs" \
            --scheduler constant --pretrained_model_path "$($python -c '
import json, sys
print(next(m["checkpoint"] for m in json.load(open(sys.argv[1]))["models"] if m["name"] == sys.argv[2]))' \
                "$out/zoo/zoo.json" "$chosen")" --train_path "$out/tasks/$target/train.tsv" \
            --dev_path "$out/tasks/$target/dev.tsv" --test_path "$out/tasks/$target/test.tsv" --output_dir "$dir/run" \
            2>"$dir/run.log"
        echo "$chosen" >"$dir/done"
    done
done

# ---- 8. the report ----
$python - "$out" "$epochs" "${benchmarks[@]}" >"$out/report.md" <<'PY'
import json, statistics, sys
out, epochs, targets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
zoo = json.load(open(out + "/zoo/zoo.json"))
names = [m["name"] for m in zoo["models"]]
rows = [line.rstrip("\n").split("\t") for line in open(out + "/zoo/matrix.tsv")]
matrix = {(r[0], b): float(v) for r in rows[1:] for b, v in zip(rows[0][1:], r[1:])}
rows = [line.rstrip("\n").split("\t") for line in open(out + "/zoo/curves.tsv")][1:]
curves = {(r[0], r[1], int(r[2])): (float(r[3]), float(r[4])) for r in rows}
simulation = {t["target"]: t for t in json.load(open(out + "/simulate.json"))["targets"]}
build = json.load(open(out + "/build.json"))

def test_score(path):
    lines = [json.loads(line) for line in open(path)]
    return [l["accuracy"] for l in lines if l.get("split") == "test"][-1]

print("| target | best (test) | brute force: choice, test | two-phase: choice, test | = brute force | within seed noise | regret | recall hit | epoch units BF / SH / 2P | seconds BF / SH / 2P | speed-up vs BF | speed-up vs SH | real = replay |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
totals = {"bf_s": 0, "sh_s": 0, "tp_s": 0, "bf_u": 0, "sh_u": 0, "tp_u": 0}
agree = noise_ok = hits = replay_same = 0
regrets = []
for t in targets:
    sim = simulation[t]
    brute = sim["strategies"]["brute_force"]
    two = json.load(open(f"{out}/select/{t}.two_phase.json"))
    halving = json.load(open(f"{out}/select/{t}.successive_halving.json"))
    replay = sim["strategies"]["two_phase"]
    bf_seconds = sum(curves[(m, t, e)][1] for m in names for e in range(1, epochs + 1))
    bf_units = len(names) * epochs
    tp_seconds, sh_seconds = two["total_seconds"], halving["total_seconds"]
    seeds = [matrix[(brute["chosen"], t)]] + [test_score(f"{out}/noise/{t}/seed{s}/run/metrics.jsonl") for s in (8, 9)]
    noise = statistics.stdev(seeds)
    chosen_test = two["chosen_test"]["score"]
    same = two["chosen"] == brute["chosen"]
    within = same or abs(chosen_test - matrix[(brute["chosen"], t)]) <= 2 * noise
    regret = sim["best_score"] - chosen_test
    same_replay = two["chosen"] == replay["chosen"] and two["epoch_units"] == replay["epoch_units"]
    agree += same
    noise_ok += within
    hits += sim["recall_hit"]
    replay_same += same_replay
    regrets.append(regret)
    for key, value in (("bf_s", bf_seconds), ("sh_s", sh_seconds), ("tp_s", tp_seconds), ("bf_u", bf_units),
                       ("sh_u", halving["epoch_units"]), ("tp_u", two["epoch_units"])):
        totals[key] += value
    print(f"| {t} | {sim['best_model']} {sim['best_score']:.3f} | {brute['chosen']} {matrix[(brute['chosen'], t)]:.3f} "
          f"| {two['chosen']} {chosen_test:.3f} | {'yes' if same else 'no'} | {'yes' if within else 'no'} (sd {noise:.3f}) "
          f"| {regret:.3f} | {'yes' if sim['recall_hit'] else 'no'} | {bf_units} / {halving['epoch_units']} / {two['epoch_units']} "
          f"| {bf_seconds:.0f} / {sh_seconds:.0f} / {tp_seconds:.0f} | {bf_seconds / tp_seconds:.1f}x | {sh_seconds / tp_seconds:.1f}x "
          f"| {'yes' if same_replay else 'no'} |")
n = len(targets)
print()
print(f"Over {n} targets: two-phase chose brute force's model on {agree}, a model within two seed standard deviations "
      f"of it on {noise_ok}; mean regret {statistics.mean(regrets):.3f} (test accuracy); recall hit rate {hits}/{n}; "
      f"real run = replay on {replay_same}/{n}.")
print(f"Epoch units: brute force {totals['bf_u']}, successive halving {totals['sh_u']}, two-phase {totals['tp_u']} "
      f"({totals['bf_u'] / totals['tp_u']:.1f}x and {totals['sh_u'] / totals['tp_u']:.1f}x fewer).")
print(f"Seconds (LEEP included for two-phase): brute force {totals['bf_s']:.0f}, successive halving {totals['sh_s']:.0f}, "
      f"two-phase {totals['tp_s']:.0f} (speed-up {totals['bf_s'] / totals['tp_s']:.1f}x and "
      f"{totals['sh_s'] / totals['tp_s']:.1f}x).")
print(f"Offline phase: {build['epoch_units']} epoch units, {build['fine_tuning_seconds']:.0f} s of fine-tuning, "
      f"{build['leep_forward_passes']} LEEP forward passes in {build['leep_seconds']:.0f} s.")
PY
log "done in $(((SECONDS - started) / 60)) min: $out/report.md"
cat "$out/report.md"
