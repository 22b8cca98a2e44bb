#!/usr/bin/env bash
# tp-select with real training on a micro-zoo (docs/select.md, "Real training"):
#   - 4 tiny models (1-layer BERT, hidden 32; two seeds x two source tasks, heads kept) and three
#     benchmark tasks from real labelled text (fortune categories; Debian packages' debtags from
#     their descriptions);
#   - the offline phase (tp-select build): its curves and matrix equal what the tp-finetune runs
#     logged, its LEEP scores equal a Python LEEP of tp-infer's softmax outputs and the labels;
#   - two-phase selection with real training on one benchmark left out: the same choice, epoch
#     units and rungs as `simulate` replaying the logged curves, every trained epoch's dev score
#     equal to the logged one (exact resume), its LEEP equal to the table's, the chosen model's
#     test score (after finishing its epochs) equal to the matrix's;
#   - brute force with real training: all 4 x E epochs, the choice = the best last dev score of the
#     logged curves; two-phase pays fewer epoch units, and its choice's best-on-dev score after E
#     epochs (the weights tp-finetune keeps) is within 0.1 of brute force's choice's (two standard
#     errors of an accuracy on 100 dev examples: 2 sqrt(0.25 / 100));
#   - clear errors: a model without a head, a missing checkpoint, malformed manifests, a decaying
#     learning-rate schedule or a per-run key in the template, an unknown task, a reused work dir.
# TP_TEST_QUICK=1 (sanitizers): 12 train / 6 dev / 6 test examples per class, 2 epochs, no
# threshold on the choice's quality.
# Usage: tests/e2e/test_select_train.sh BUILD_DIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
python=/usr/bin/python3
per_class=100 per_class_eval=25 epochs=3
[ "$quick" = 1 ] && per_class=12 per_class_eval=6 epochs=2
select_options=(--k 1 --tau 0.05 --top 3)

# ---- tasks and the micro-zoo ----
make_task() { bash "$repo/scripts/make_select_task.sh" "$@" >/dev/null || fail "make_select_task.sh $*"; }
make_task "$work/tasks/fort-a" fortunes "$per_class" "$per_class_eval" computers politics science men-women
make_task "$work/tasks/pkg-lang" debtags "$per_class" "$per_class_eval" implemented-in::perl implemented-in::c \
    implemented-in::c++ implemented-in::python
make_task "$work/tasks/pkg-ui" debtags "$per_class" "$per_class_eval" uitoolkit::gtk uitoolkit::qt uitoolkit::ncurses \
    uitoolkit::sdl
make_task "$work/sources/fort-s" fortunes 60 15 art wisdom linux perl
make_task "$work/sources/pkg-s" debtags 60 15 use::gameplaying use::converting use::editing use::viewing
cat >"$work/micro.json" <<JSON
{ "emb_size": 32, "feedforward_size": 64, "hidden_size": 32, "hidden_act": "gelu", "heads_num": 2, "layers_num": 1,
  "max_seq_length": 64, "dropout": 0.1, "data_processor": "bert", "embedding": ["word", "pos", "seg"],
  "encoder": "transformer", "mask": "fully_visible", "target": ["mlm", "sp"], "tie_weights": true }
JSON
cat >"$work/finetune.json" <<JSON
{ "vocab_path": "$vocab", "batch_size": 16, "seq_length": 32, "learning_rate": 2e-3, "pooling": "mean",
  "threads": 1, "report_steps": 100 }
JSON
models=()
for seed in 1 2; do
    for source in fort-s pkg-s; do
        out="$work/sources/out-$seed-$source"
        "$build/tp-finetune" --config "$work/finetune.json" --model "$work/micro.json" --seed "$seed" --epochs_num 2 \
            --train_path "$work/sources/$source/train.tsv" --dev_path "$work/sources/$source/dev.tsv" \
            --output_dir "$out" 2>"$out.log" || fail "source fine-tuning: $(tail -2 "$out.log")"
        models+=("{\"name\": \"s$seed-$source\", \"checkpoint\": \"$out/best/$(cat "$out/best/latest")/model.safetensors\",
          \"config\": \"$work/micro.json\", \"head\": {\"task\": \"$source\", \"labels\": 4}}")
    done
done
mkdir -p "$work/zoo"
manifest() { # MODELS...: a manifest with the given model entries
    local IFS=,
    echo "{\"format\": \"tp-select-zoo\", \"version\": 1, \"epochs\": $epochs, \"matrix\": \"matrix.tsv\", \"models\": [$*]}"
}
manifest "${models[@]}" >"$work/zoo/zoo.json"
common=(--tasks "$work/tasks" --finetune "$work/finetune.json")

# ---- the offline phase ----
"$build/tp-select" build --zoo "$work/zoo/zoo.json" "${common[@]}" --work "$work/offline" >"$work/build.json" \
    2>"$work/build.log" || fail "build: $(tail -3 "$work/build.log")"
$python - "$work" "$epochs" <<'PY' || fail "offline phase: see above"
import glob, json, math, sys
work, epochs = sys.argv[1], int(sys.argv[2])
zoo = work + "/zoo"
names = [m["name"] for m in json.load(open(zoo + "/zoo.json"))["models"]]
tasks = ["fort-a", "pkg-lang", "pkg-ui"]
def table(path):
    rows = [line.rstrip("\n").split("\t") for line in open(path)]
    return rows[0], rows[1:]
header, rows = table(zoo + "/matrix.tsv")
assert header == ["model"] + tasks, header
matrix = {(r[0], t): float(v) for r in rows for t, v in zip(tasks, r[1:])}
_, rows = table(zoo + "/curves.tsv")
curves = {(r[0], r[1], int(r[2])): float(r[3]) for r in rows}
assert len(rows) == len(curves) == len(names) * len(tasks) * epochs, len(rows)
_, rows = table(zoo + "/leep.tsv")
leep = {(r[0], r[1]): float(r[2]) for r in rows}
assert len(leep) == len(names) * len(tasks) and all(float(r[3]) > 0 for r in rows)
for i, name in enumerate(names):
    for task in tasks:
        run = f"{work}/offline/{task}/{i:02d}-{name}"
        lines = [json.loads(line) for line in open(run + "/metrics.jsonl")]
        dev = {l["epoch"]: l["accuracy"] for l in lines if l.get("split") == "dev"}
        test = [l["accuracy"] for l in lines if l.get("split") == "test"]
        assert sorted(dev) == list(range(1, epochs + 1)), (run, sorted(dev))
        for e in dev:
            assert curves[(name, task, e)] == dev[e], (run, e)
        assert test and matrix[(name, task)] == test[-1], (run, test)
        # LEEP (Nguyen et al. 2020) of the head's softmax outputs on every training example.
        labels = [line.split("\t")[0] for line in open(f"{work}/tasks/{task}/train.tsv")][1:]
        probs = [[float(p) for p in line.rstrip("\n").split("\t")[1].split(" ")]
                 for line in list(open(run + ".leep_predictions.tsv"))[1:]]
        assert len(probs) == len(labels)
        n, joint = len(labels), {}
        for y, theta in zip(labels, probs):
            row = joint.setdefault(y, [0.0] * len(theta))
            for z, p in enumerate(theta):
                row[z] += p / n
        marginal = [sum(joint[y][z] for y in joint) for z in range(len(probs[0]))]
        expected = sum(math.log(sum(joint[y][z] / marginal[z] * p for z, p in enumerate(theta) if marginal[z] > 0))
                       for y, theta in zip(labels, probs)) / n
        assert abs(leep[(name, task)] - expected) < 1e-9, (name, task, leep[(name, task)], expected)
print("offline phase: curves, matrix and LEEP check out")
PY

# ---- two-phase selection with real training; pkg-lang left out of the offline data ----
"$build/tp-select" select --zoo "$work/zoo/zoo.json" --target pkg-lang "${common[@]}" --work "$work/online" \
    "${select_options[@]}" >"$work/two_phase.json" 2>"$work/two_phase.log" || fail "select: $(tail -3 "$work/two_phase.log")"
"$build/tp-select" simulate --zoo "$work/zoo/zoo.json" --target pkg-lang "${select_options[@]}" >"$work/simulate.json" ||
    fail "simulate failed"
"$build/tp-select" select --zoo "$work/zoo/zoo.json" --target pkg-lang "${common[@]}" --work "$work/brute" \
    --strategy brute_force >"$work/brute.json" 2>"$work/brute.log" || fail "brute force: $(tail -3 "$work/brute.log")"
$python - "$work" "$epochs" "$quick" <<'PY' || fail "selection: see above"
import json, sys
work, epochs, quick = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
zoo = work + "/zoo"
names = [m["name"] for m in json.load(open(zoo + "/zoo.json"))["models"]]
rows = [line.rstrip("\n").split("\t") for line in open(zoo + "/curves.tsv")][1:]
curves = {(r[0], int(r[2])): float(r[3]) for r in rows if r[1] == "pkg-lang"}
rows = [line.rstrip("\n").split("\t") for line in open(zoo + "/matrix.tsv")]
matrix = {r[0]: float(r[rows[0].index("pkg-lang")]) for r in rows[1:]}
rows = [line.rstrip("\n").split("\t") for line in open(zoo + "/leep.tsv")][1:]
leep = {r[0]: float(r[2]) for r in rows if r[1] == "pkg-lang"}
live = json.load(open(work + "/two_phase.json"))
replay = json.load(open(work + "/simulate.json"))["targets"][0]["strategies"]["two_phase"]
brute = json.load(open(work + "/brute.json"))
# The real run follows the logged curves: same choice, epoch units and rungs as the replay.
assert live["chosen"] == replay["chosen"], (live["chosen"], replay["chosen"])
assert live["epoch_units"] == replay["epoch_units"], (live["epoch_units"], replay["epoch_units"])
assert [r["survivors"] for r in live["rungs"]] == [r["survivors"] for r in replay["rungs"]]
for entry in live["trained"] + brute["trained"]:
    for e, dev in enumerate(entry["dev"], 1):
        assert dev == curves[(entry["model"], e)], (entry["model"], e, dev)
assert live["recall"]["leep"] and all(leep[m] == v for m, v in live["recall"]["leep"].items())
assert live["recall"]["excluded_benchmark"] == "pkg-lang"
assert live["finish"]["epoch_units"] == epochs - len(live["rungs"])  # the chosen trained in every rung
assert live["chosen_test"]["score"] == matrix[live["chosen"]], (live["chosen_test"], matrix[live["chosen"]])
# Brute force: every model, every epoch; the choice is the best last dev score (ties: manifest order).
best = max(names, key=lambda m: (curves[(m, epochs)], -names.index(m)))
assert brute["epoch_units"] == len(names) * epochs and brute["chosen"] == best, (brute["chosen"], best)
assert live["epoch_units"] < brute["epoch_units"]
# What a user keeps of a choice: its best-on-dev weights after E epochs.
kept = lambda m: max(curves[(m, e)] for e in range(1, epochs + 1))
gap = kept(best) - kept(live["chosen"])
assert quick or gap <= 0.1, f"two-phase chose {live['chosen']}: best dev {gap:.3f} below brute force's choice"
print(f"two-phase: {live['chosen']} in {live['epoch_units']} epoch units, brute force: {best} in "
      f"{brute['epoch_units']}; best-on-dev gap {gap:.3f}")
PY

# ---- clear errors ----
expect_error() { # NAME FRAGMENT COMMAND...: exit status 1 and the fragment in the message
    local name=$1 fragment=$2 status=0
    shift 2
    "$@" >"$work/error.out" 2>"$work/error.log" || status=$?
    [ "$status" -eq 1 ] || fail "$name: exit status $status: $(tail -2 "$work/error.log")"
    grep -qF -- "$fragment" "$work/error.log" || fail "$name: expected '$fragment' in: $(tail -2 "$work/error.log")"
}
headless=$(sed 's/, "head": {"task": "fort-s", "labels": 4}//' <<<"${models[0]}")
mkdir -p "$work/headless" "$work/missing" "$work/bad"
cp "$work/zoo/"*.tsv "$work/headless/"
manifest "$headless" "${models[@]:1}" | sed 's/"matrix": "matrix.tsv"/&, "curves": "curves.tsv"/' >"$work/headless/zoo.json"
expect_error "model without a head" "model 's1-fort-s' has no head" "$build/tp-select" select --zoo "$work/headless/zoo.json" \
    --target pkg-lang "${common[@]}" --work "$work/headless_run" --k 1 --tau 1
manifest "$(sed 's/out-1-fort-s/out-9-fort-s/' <<<"${models[0]}")" "${models[@]:1}" >"$work/missing/zoo.json"
expect_error "missing checkpoint" "key 'models[0].checkpoint': $work/sources/out-9-fort-s" "$build/tp-select" build \
    --zoo "$work/missing/zoo.json" "${common[@]}" --work "$work/missing_run"
printf '{"format": "tp-select-zoo", "version": 1,\n "matrix": "m.tsv" "models": []}\n' >"$work/bad/zoo.json"
expect_error "manifest syntax" "zoo.json: line 2" "$build/tp-select" build --zoo "$work/bad/zoo.json" "${common[@]}" \
    --work "$work/bad_run"
manifest "${models[0]}" | sed 's/"head"/"heads"/' >"$work/bad/zoo.json"
expect_error "manifest key" "key 'models[0].heads': unknown key" "$build/tp-select" build --zoo "$work/bad/zoo.json" \
    "${common[@]}" --work "$work/bad_run"
sed 's/"threads"/"scheduler": "linear", &/' "$work/finetune.json" >"$work/linear.json"
expect_error "decaying schedule" "key 'scheduler': 'linear'" "$build/tp-select" select --zoo "$work/zoo/zoo.json" \
    --target pkg-lang --tasks "$work/tasks" --finetune "$work/linear.json" --work "$work/linear_run"
sed "s|\"threads\"|\"train_path\": \"x.tsv\", &|" "$work/finetune.json" >"$work/per_run.json"
expect_error "per-run key" "key 'train_path': tp-select sets it" "$build/tp-select" select --zoo "$work/zoo/zoo.json" \
    --target pkg-lang --tasks "$work/tasks" --finetune "$work/per_run.json" --work "$work/per_run"
expect_error "unknown task" "$work/tasks/nope/train.tsv: missing" "$build/tp-select" select --zoo "$work/zoo/zoo.json" \
    --target nope "${common[@]}" --work "$work/nope_run"
expect_error "reused work dir" "holds an earlier run" "$build/tp-select" select --zoo "$work/zoo/zoo.json" \
    --target pkg-lang "${common[@]}" --work "$work/online" "${select_options[@]}"
echo "test_select_train.sh: 1 passed, 0 failed"
