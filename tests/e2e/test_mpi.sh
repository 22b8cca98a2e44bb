#!/usr/bin/env bash
# Data-parallel training over MPI (docs/distributed.md), 2 ranks on this machine:
#   (a) 2 ranks with batch 4 each give the losses and weights of 1 rank with batch 8 over 20
#       steps (dropout off, the only difference the order of the sums): every metric and every
#       weight tensor within 1e-6 relative (tests/e2e/mpi_compare.py); the same with ZeRO-1 on.
#       Gradients are clipped (max_grad_norm 1, below the norms of these steps), so the norm's
#       sum over the ZeRO-1 shards is checked too;
#   (b) rank 1 killed with SIGKILL after step 3, with mpirun told to leave rank 0 running (by
#       default mpirun takes the job down itself): rank 0's dist_timeout watchdog ends the job,
#       non-zero, within 30 s, and its message names rank 0 and the operation it waited in;
#   (c) a 2-rank run stopped by SIGTERM sent to rank 1 alone (both ranks stop after the same step)
#       and resumed equals the uninterrupted 2-rank run of (a) bit for bit (metrics and weights);
#   (d) resuming that run with 1 rank is refused with a message naming both world sizes.
# Skipped when mpirun is missing or tp-pretrain was built without MPI.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$repo/tests/e2e/mpi_common.sh" tp-pretrain

make_dataset 20 32
cat >"$work/run.json" <<JSON
{
  "model": "$repo/models/bert/tiny_config.json",
  "vocab_path": "$vocab",
  "dataset_path": "$work/data.tpd",
  "seq_length": 32,
  "total_steps": 20,
  "learning_rate": 1e-3,
  "max_grad_norm": 1,
  "report_steps": 1,
  "save_checkpoint_steps": 5,
  "keep_checkpoints": 0,
  "threads": 1,
  "dist_bucket_mb": 4,
  "dist_timeout": 5
}
JSON
tp_pretrain=("$build/tp-pretrain" --config "$work/run.json" --model.dropout 0)
tp_pretrain_2=(mpirun "${mpirun_flags[@]}" "${tp_pretrain[@]}" --batch_size 4)
final=checkpoints/step-00000020/model.safetensors

# (a) 1 rank x batch 8 == 2 ranks x batch 4, without and with ZeRO-1.
"${tp_pretrain[@]}" --batch_size 8 --output_dir "$work/one" 2>"$work/one.log" || fail "1 rank: $(tail -2 "$work/one.log")"
"${tp_pretrain_2[@]}" --output_dir "$work/two" 2>"$work/two.log" || fail "2 ranks: $(tail -2 "$work/two.log")"
grep -q "8 sequences of 32 tokens per step (2 ranks)" "$work/two.log" || fail "2 ranks: no global batch of 8 in the log"
compare metrics "$work/two/metrics.jsonl" "$work/one/metrics.jsonl" 1e-6 || fail "2 ranks: losses differ from 1 rank's"
compare weights "$work/two/$final" "$work/one/$final" 1e-6 || fail "2 ranks: weights differ from 1 rank's"
"${tp_pretrain_2[@]}" --zero 1 --output_dir "$work/zero" 2>"$work/zero.log" || fail "ZeRO-1: $(tail -2 "$work/zero.log")"
compare metrics "$work/zero/metrics.jsonl" "$work/one/metrics.jsonl" 1e-6 || fail "ZeRO-1: losses differ from 1 rank's"
compare weights "$work/zero/$final" "$work/one/$final" 1e-6 || fail "ZeRO-1: weights differ from 1 rank's"

# signal_rank_1 LAUNCHER SIGNAL: sends SIGNAL to rank 1, the child of mpirun whose
# OMPI_COMM_WORLD_RANK is 1.
signal_rank_1() {
    for pid in $(pgrep -P "$1"); do
        tr '\0' '\n' <"/proc/$pid/environ" | grep -qx OMPI_COMM_WORLD_RANK=1 && kill "-$2" "$pid"
    done
}

# (b) SIGKILL to rank 1 after step 3.
start=$SECONDS
mpirun "${mpirun_flags[@]}" --mca orte_abort_on_non_zero_status 0 "${tp_pretrain[@]}" --batch_size 4 \
    --total_steps 1000 --save_checkpoint_steps 0 --output_dir "$work/kill" >"$work/kill.log" 2>&1 &
launcher=$!
for _ in $(seq 300); do grep -q "^step 3/" "$work/kill.log" && break; sleep 0.1; done
grep -q "^step 3/" "$work/kill.log" || fail "kill: the run did not reach step 3: $(tail -2 "$work/kill.log")"
signal_rank_1 "$launcher" KILL
if wait "$launcher"; then fail "kill: mpirun exited 0 after rank 1 was killed"; fi
[ $((SECONDS - start)) -lt 30 ] || fail "kill: the job took $((SECONDS - start)) s to end"
grep -q "error: step [0-9]*: rank 0: .*: no answer from the other ranks within dist_timeout 5 s" "$work/kill.log" ||
    fail "kill: no message from rank 0: $(grep -v '^step' "$work/kill.log" | head -3)"

# (c) SIGTERM to rank 1 alone after the step-5 checkpoint; then resume.
"${tp_pretrain_2[@]}" --output_dir "$work/stopped" 2>"$work/stopped.log" &
launcher=$!
for _ in $(seq 300); do [ -d "$work/stopped/checkpoints/step-00000005" ] && break; sleep 0.02; done
signal_rank_1 "$launcher" TERM
wait "$launcher" || fail "stop: $(tail -2 "$work/stopped.log")"
grep -q "stopped by a signal to another rank at step" "$work/stopped.log" || fail "stop: the run was not interrupted: $(tail -2 "$work/stopped.log")"
"${tp_pretrain_2[@]}" --output_dir "$work/stopped" --resume 2>>"$work/stopped.log" || fail "resume: $(tail -2 "$work/stopped.log")"
diff <(losses_2 "$work/two/metrics.jsonl") <(losses_2 "$work/stopped/metrics.jsonl") >"$work/diff" ||
    fail "resumed 2-rank losses differ from the uninterrupted run: $(head -4 "$work/diff")"
cmp -s "$work/two/$final" "$work/stopped/$final" || fail "resumed 2-rank weights differ from the uninterrupted run"

# (d) the 2-rank checkpoints resumed by 1 rank.
cp -r "$work/stopped" "$work/other_size"
if "${tp_pretrain[@]}" --batch_size 4 --output_dir "$work/other_size" --resume 2>"$work/other_size.log"; then
    fail "1 rank resumed a 2-rank checkpoint"
fi
grep -q "the checkpoint was trained on 2 ranks, this run has 1" "$work/other_size.log" ||
    fail "world-size change: unclear message: $(tail -1 "$work/other_size.log")"
echo "test_mpi.sh: 2 ranks == 1 rank (plain and ZeRO-1), kills end the job, stop + resume exact, world-size change refused: 1 passed, 0 failed"
