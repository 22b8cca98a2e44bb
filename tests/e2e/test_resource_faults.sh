#!/usr/bin/env bash
# Resource faults and stop signals (docs/robustness.md, "Resource faults"):
#   - disk full while checkpointing, as a file-size limit (ulimit -f: EFBIG) and, where this user
#     may mount one, a full tmpfs (ENOSPC): tp-pretrain fails with one message naming the file and
#     the reason, the previous checkpoint stays byte-identical and named by 'latest', and no
#     half-written file or directory is left under any name;
#   - disk full while logging metrics (a file-size limit reached by metrics.jsonl): one message
#     naming the file, exit status 1; the resumed run drops the line cut short and logs the
#     uninterrupted run's losses;
#   - the dataset cut short (truncate -s 0, -s 100) or modified (touch) under a running
#     tp-pretrain: one message naming the file (and the offset), exit status 1, no crash; a
#     dataset deleted under a run does not disturb it (the run holds the open file);
#   - out of memory at start-up (ulimit -v, batch_size 2^20): one message saying how much one step
#     needs, exit status 1 (skipped under the sanitizers, which cannot run under ulimit -v);
#   - SIGINT to tp-pretrain and SIGINT / SIGTERM to tp-finetune save a checkpoint and exit 0, and
#     the interrupted runs resume to the losses of uninterrupted ones.
# (SIGTERM to tp-pretrain: test_pretrain.sh; SIGKILL at random moments: test_crash_resume.sh.)
# Usage: tests/e2e/test_resource_faults.sh BUILD_DIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$repo/tests/e2e/tiny_inputs.sh"
build=$(cd "$build" && pwd)
cd "$work"
checks=0

tiny_pretraining_inputs
cat >run.json <<JSON
{ "model": "$repo/models/bert/tiny_config.json", "vocab_path": "vocab.txt", "dataset_path": "data.tpd",
  "batch_size": 2, "seq_length": 16, "total_steps": 4, "save_checkpoint_steps": 1, "report_steps": 1,
  "keep_checkpoints": 0, "threads": 1 }
JSON
pretrain=("$build/tp-pretrain" --config run.json)

# no_temporary_files DIR: nothing half-written is left, under a final name or a temporary one.
no_temporary_files() {
    ! find "$1" -name '*.tmp.*' | grep -q . || fail "$2: temporary files left: $(find "$1" -name '*.tmp.*')"
}

# expect_error LOG PATTERN WHAT: the log's one error line is PATTERN (a bash pattern).
expect_error() {
    local line
    line=$(grep -E ': error: ' "$1" || true)
    # shellcheck disable=SC2053 # a pattern on purpose
    [[ $line == $2 ]] || fail "$3: expected the error line '$2', got: $(cat "$1")"
    [ "$(grep -c -E ': error: ' "$1")" = 1 ] || fail "$3: more than one error line: $(cat "$1")"
}

# The uninterrupted run every checkpoint is compared with.
"${pretrain[@]}" --output_dir full 2>full.log || fail "uninterrupted run: $(tail -2 full.log)"

# ---- disk full while checkpointing --------------------------------------------------------------
# check_disk_full DIR LOG REASON WHAT REFERENCE: the run in DIR stopped at its step-3 checkpoint for
# REASON; its steps 1 and 2 are byte-identical to REFERENCE's, 'latest' names step 2.
check_disk_full() {
    expect_error "$2" "tp-pretrain: error: saving checkpoint $1/checkpoints/step-00000003: $1/checkpoints/step-00000003.tmp.*/optimizer.safetensors: $3" "$4"
    [ "$(cat "$1/checkpoints/latest")" = step-00000002 ] || fail "$4: latest is $(cat "$1/checkpoints/latest")"
    [ "$(ls "$1/checkpoints")" = "$(printf 'latest\nstep-00000001\nstep-00000002')" ] ||
        fail "$4: checkpoints left: $(ls "$1/checkpoints")"
    for step in step-00000001 step-00000002; do
        for file in model.safetensors optimizer.safetensors trainer_state.json; do
            cmp -s "$1/checkpoints/$step/$file" "$5/checkpoints/$step/$file" ||
                fail "$4: $step/$file differs from $5's"
        done
    done
    no_temporary_files "$1" "$4"
    checks=$((checks + 1))
}

# A file-size limit between the weights and the optimizer state: the step-3 optimizer file fails.
# (SIGXFSZ is ignored, as a shell script ignores it for its programs, so the write returns EFBIG.)
limit_kb=$((($(stat -c %s full/checkpoints/step-00000001/model.safetensors) + \
    $(stat -c %s full/checkpoints/step-00000001/optimizer.safetensors)) / 2048))
"${pretrain[@]}" --output_dir limited --total_steps 2 2>/dev/null || fail "first two steps failed"
cp -r limited limited_before
status=0
(trap '' XFSZ && ulimit -f "$limit_kb" && exec "${pretrain[@]}" --output_dir limited --resume) 2>limited.log || status=$?
[ "$status" = 1 ] || fail "file-size limit: exit status $status, expected 1: $(tail -2 limited.log)"
check_disk_full limited limited.log "File too large" "file-size limit" limited_before

# A tmpfs with room for two checkpoints and a half: the third fails with ENOSPC.
checkpoint_kb=$((($(du -sk full/checkpoints/step-00000001 | cut -f1))))
mkdir small_disk
if mount -t tmpfs -o size=$((checkpoint_kb * 5 / 2))k tmpfs small_disk 2>/dev/null; then
    trap 'umount "$work/small_disk" 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
    status=0
    "${pretrain[@]}" --output_dir small_disk/run 2>full_disk.log || status=$?
    [ "$status" = 1 ] || fail "full disk: exit status $status, expected 1: $(tail -2 full_disk.log)"
    check_disk_full small_disk/run full_disk.log "No space left on device" "full disk" full
    umount small_disk
else
    echo "test_resource_faults.sh: cannot mount a tmpfs here (not root?): the full-disk case is skipped"
fi

# ---- disk full while logging metrics -------------------------------------------------------------
# A metrics file padded (one line of step 0) to just under a file-size limit that the checkpoints
# stay below: the resumed run's step-3 line fails part-way.  The run stops with one message naming
# the file, 'latest' stays step 2, and a resume without the limit drops the cut line and logs the
# uninterrupted run's steps 3 and 4.
cp -r full logged # as if it had stopped after step 2
rm -r logged/checkpoints/step-00000003 logged/checkpoints/step-00000004
printf step-00000002 >logged/checkpoints/latest
head -n 2 full/metrics.jsonl >logged/metrics.jsonl
limit_kb=$(($(stat -c %s full/checkpoints/step-00000001/optimizer.safetensors) / 1024 + 64))
room=100 # bytes left for the step-3 line, which is longer
pad=$((limit_kb * 1024 - $(stat -c %s logged/metrics.jsonl) - room - 20))
{ printf '{"step":0,"pad":"' && head -c "$pad" /dev/zero | tr '\0' x && printf '"}\n'; } >pad.jsonl
cat pad.jsonl - <logged/metrics.jsonl >padded.jsonl && mv padded.jsonl logged/metrics.jsonl
status=0
(trap '' XFSZ && ulimit -f "$limit_kb" && exec "${pretrain[@]}" --output_dir logged --resume) 2>logged.log || status=$?
[ "$status" = 1 ] || fail "metrics disk full: exit status $status, expected 1: $(tail -2 logged.log)"
expect_error logged.log "tp-pretrain: error: logged/metrics.jsonl: cannot write: File too large" "metrics disk full"
[ "$(cat logged/checkpoints/latest)" = step-00000002 ] || fail "metrics disk full: latest is $(cat logged/checkpoints/latest)"
[ -n "$(tail -c 1 logged/metrics.jsonl)" ] || fail "metrics disk full: no line was cut short (the case tests nothing)"
"${pretrain[@]}" --output_dir logged --resume 2>>logged.log || fail "metrics disk full: resume: $(tail -2 logged.log)"
diff <(losses full/metrics.jsonl) <(losses logged/metrics.jsonl | tail -n +2) >/dev/null ||
    fail "metrics disk full: the resumed metrics differ from the uninterrupted run's: $(diff <(losses full/metrics.jsonl) <(losses logged/metrics.jsonl | tail -n +2) | head -4)"
checks=$((checks + 1))

# ---- the dataset cut short or changed under a running job ---------------------------------------
# under_run NAME COMMAND...: starts a long run on a copy of the dataset, runs COMMAND on that copy
# once the run has logged a step, and waits for the run to end; its exit status is in $status.
under_run() {
    local name=$1
    shift
    cp data.tpd "$name.tpd"
    "${pretrain[@]}" --dataset_path "$name.tpd" --output_dir "$name" --total_steps 100000 \
        --save_checkpoint_steps 0 2>"$name.log" &
    local pid=$!
    wait_until grep -qs '"step"' "$name/metrics.jsonl" || fail "$name: the run logged no step"
    "$@" "$name.tpd"
    [ "$name" != deleted ] || kill -TERM "$pid" # a deleted dataset is no fault: stop the run
    wait_until ended "$pid" || { kill -9 "$pid"; fail "$name: the run went on for 2 minutes"; }
    status=0
    wait "$pid" || status=$?
}
ended() { ! kill -0 "$1" 2>/dev/null; }
under_run truncated truncate -s 0
[ "$status" = 1 ] || fail "dataset truncated: exit status $status, expected 1: $(tail -2 truncated.log)"
expect_error truncated.log "tp-pretrain: error: truncated.tpd: offset *: unreadable (the file has 0 bytes now, 920 when opened: it was truncated, or its storage failed, during the run)" \
    "dataset truncated"
# Cut within the one page the file fills: nothing raises SIGBUS, the reads give zeros.
under_run shortened truncate -s 100
[ "$status" = 1 ] || fail "dataset shortened: exit status $status, expected 1: $(tail -2 shortened.log)"
expect_error shortened.log "tp-pretrain: error: shortened.tpd: offset 100: the file was cut short while training (it had 920 bytes when opened)" \
    "dataset shortened"
under_run modified touch
[ "$status" = 1 ] || fail "dataset modified: exit status $status, expected 1: $(tail -2 modified.log)"
expect_error modified.log "tp-pretrain: error: modified.tpd: the file was modified while training (920 bytes when opened, 920 now)" \
    "dataset modified"
under_run deleted rm -f
[ "$status" = 0 ] || fail "dataset deleted: exit status $status, expected 0: $(tail -2 deleted.log)"
grep -q "stopped by signal 15" deleted.log || fail "dataset deleted: the run did not go on: $(tail -2 deleted.log)"
checks=$((checks + 4))

# ---- out of memory at start-up ------------------------------------------------------------------
if grep -q '^TP_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
    echo "test_resource_faults.sh: sanitizer build: the out-of-memory case (ulimit -v) is skipped"
else
    status=0
    (ulimit -v 3000000 && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 exec "${pretrain[@]}" --output_dir oom \
        --batch_size 1048576) 2>oom.log || status=$?
    [ "$status" = 1 ] || fail "out of memory: exit status $status, expected 1: $(tail -2 oom.log)"
    expect_error oom.log "tp: error: out of memory: the activations of one step need more than 8.4 GiB, and 2.9 GiB is all this process may use (lower batch_size or seq_length)" \
        "out of memory"
    ! ls oom/checkpoints 2>/dev/null | grep -q . || fail "out of memory: a checkpoint was written"
    checks=$((checks + 1))
fi

# ---- stop signals save a checkpoint and exit 0 ---------------------------------------------------
# interrupt SIGNAL DIR LOG PROGRAM ARGS...: starts PROGRAM, sends SIGNAL once DIR has a checkpoint
# (so the signal lands during training), expects exit status 0 and the stop message.
interrupt() {
    local signal=$1 dir=$2 log=$3
    shift 3
    "$@" 2>"$log" &
    local pid=$!
    wait_until [ -f "$dir/checkpoints/latest" ] || fail "$dir: no checkpoint was written"
    kill "-$signal" "$pid"
    status=0
    wait "$pid" || status=$?
    [ "$status" = 0 ] || fail "$signal to $1: exit status $status: $(tail -2 "$log")"
    grep -q "stopped by signal" "$log" || fail "$signal to $1: no stop message: $(tail -2 "$log")"
    checks=$((checks + 1))
}
long_run=("${pretrain[@]}" --total_steps 100 --save_checkpoint_steps 20 --report_steps 10)
"${long_run[@]}" --output_dir long 2>/dev/null || fail "uninterrupted long run failed"
interrupt INT interrupted interrupted.log "${long_run[@]}" --output_dir interrupted
"${long_run[@]}" --output_dir interrupted --resume 2>>interrupted.log || fail "resume after SIGINT: $(tail -2 interrupted.log)"
diff <(losses long/metrics.jsonl) <(losses interrupted/metrics.jsonl) >/dev/null ||
    fail "the run interrupted by SIGINT and resumed logged other losses than the uninterrupted one"

tiny_classifier_inputs
cat >finetune.json <<'JSON'
{ "hf_model_dir": "hf", "train_path": "train.tsv", "dev_path": "train.tsv", "epochs_num": 60, "batch_size": 2,
  "seq_length": 8, "report_steps": 100, "threads": 1 }
JSON
finetune=("$build/tp-finetune" --config finetune.json)
"${finetune[@]}" --output_dir finetuned 2>/dev/null || fail "uninterrupted fine-tuning failed"
for signal in INT TERM; do
    interrupt "$signal" "finetune_$signal" "finetune_$signal.log" "${finetune[@]}" --output_dir "finetune_$signal"
    "${finetune[@]}" --output_dir "finetune_$signal" --resume 2>>"finetune_$signal.log" ||
        fail "resume after $signal: $(tail -2 "finetune_$signal.log")"
    diff <(losses finetuned/metrics.jsonl) <(losses "finetune_$signal/metrics.jsonl") >/dev/null ||
        fail "the fine-tuning interrupted by SIG$signal and resumed logged other losses than the uninterrupted one"
done
echo "test_resource_faults.sh: $checks passed, 0 failed"
