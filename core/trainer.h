/* The training loop shared by tp-pretrain and tp-finetune.
 *
 * One optimizer step calls the step closure accumulation_steps times (each
 * call runs forward + backward of one micro-batch and returns its loss), then
 * checks the gradients, clips, updates with AdamW over the flat buffers and
 * zeroes the gradients.  The closure may run the model more than once per
 * call (sharpness-aware training needs a second forward/backward).  Progress
 * goes to stderr, metrics to a JSONL file, checkpoints to <output_dir>/checkpoints.
 *
 * Data-parallel (docs/distributed.md): launched by mpirun or srun, every rank runs the same
 * steps on its own shard of each global batch.  Before backward, each target's loss is weighted
 * by this rank's share of the target's count over all ranks (masked tokens for mlm), so that the
 * sum of the ranks' gradients is the gradient of the global batch's mean loss: N ranks with batch
 * B compute what one rank with batch N * B computes.  (This needs a target's count to be its
 * loss's denominator, or proportional to it with the same factor on every rank.)  The sum runs in buckets that start during
 * the last micro-batch's backward (tp_trainer_model_step); with `zero: 1` it is a reduce-scatter
 * instead, each rank updates its shard of the parameters and moments, and an all-gather shares
 * the result (ZeRO-1).  The non-finite check, the stop request and the logged metrics are agreed
 * over all ranks in one small sum per step.  Rank 0 alone writes metrics, progress and
 * checkpoints; every rank reads the same checkpoint on resume. */
#ifndef TP_TRAINER_H
#define TP_TRAINER_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "distributed.h"
#include "model.h"
#include "optim.h"
#include "scheduler.h"

typedef struct tp_train_options {
    const char *output_dir;
    const char *metrics_path;      /* default <output_dir>/metrics.jsonl */
    int64_t total_steps, accumulation_steps, report_steps, save_checkpoint_steps, keep_checkpoints;
    int64_t max_bad_steps;         /* consecutive non-finite steps before giving up */
    uint64_t seed;
    double learning_rate, weight_decay, max_grad_norm;
    tp_adamw_options adamw;
    tp_schedule schedule;
    double dist_timeout;           /* seconds a rank waits for the others before stopping the job (300) */
    int64_t dist_bucket_bytes;     /* gradient all-reduce bucket (dist_bucket_mb, 25 MB) */
    int zero;                      /* 1: ZeRO-1 (sharded optimizer state) when there are several ranks */
    int every_row;                 /* 1: the encoder computes every row even when the targets read only some
                                    * (tp_model_batch.targets_only off; bench/bench_bert.c --every_row) */
} tp_train_options;

/* Reads the optimisation keys of a run config (learning_rate, warmup, scheduler, ...). */
int tp_train_options_read(tp_config *run, tp_train_options *options);

/* Metrics a step reports, summed over its micro-batches. */
#define TP_MAX_METRICS 8
typedef struct tp_step_metrics {
    double loss;
    int64_t tokens;
    int count;
    const char *names[TP_MAX_METRICS]; /* e.g. "mlm", "sp" */
    double target_loss[TP_MAX_METRICS];
    int64_t correct[TP_MAX_METRICS], total[TP_MAX_METRICS];
} tp_step_metrics;

typedef struct tp_trainer tp_trainer;
/* Runs forward + backward of one micro-batch (loss already divided by the
 * number of micro-batches) and adds its metrics. */
typedef int (*tp_micro_step_fn)(tp_trainer *trainer, void *user, tp_step_metrics *metrics);

/* Optional work inside every optimizer step (tp_trainer_set_hooks), e.g. continual learning's
 * sharpness-aware step and parameter box (core/continual.h).  Without hooks a step is unchanged. */
typedef struct tp_step_hooks {
    /* After every micro-batch's backward, with the step's gradient in params->grad: may move the
     * parameters, run the micro-batches again (tp_trainer_rerun) and change the gradient.  It must
     * leave the parameters where the update starts and the gradient the update uses. */
    int (*gradients)(tp_trainer *trainer, void *user);
    /* After the update (e.g. a projection of the parameters). */
    int (*updated)(tp_trainer *trainer, void *user);
    void *user;
} tp_step_hooks;

struct tp_trainer {
    tp_train_options options;
    tp_model *model;
    tp_ctx ctx;
    tp_param_segment *segments;
    int64_t segment_count;
    int64_t step;            /* optimizer steps done */
    int64_t bad_steps;       /* consecutive non-finite steps */
    tp_step_metrics window;  /* since the last report */
    int64_t window_steps;
    double window_seconds, window_wait_seconds;
    FILE *metrics_file;      /* rank 0 only */
    const char *model_config_json;
    char checkpoint_root[4096];
    /* Data-parallel state. */
    tp_comm *comm;
    int rank, world_size;
    int sharded;             /* ZeRO-1 in effect (zero: 1 and several ranks) */
    tp_grad_sync *grad_sync; /* the bucketed all-reduce (not sharded) */
    int64_t *bucket_ready;   /* [buckets]: the tape index after which a bucket's gradients are final */
    int64_t micro;           /* the micro-batch being run */
    int grads_final;         /* the last micro-batch's backward has run */
    int stand_in;            /* tp_trainer_stand_in_step: this micro-batch's loss counts 0 */
    /* This rank's part of the update: floats [shard_offset, + shard_length) of the flat buffers,
     * everything unless sharded.  grad_shard holds their summed gradients, exp_avg/exp_avg_sq
     * their moments, shard_segments the segments clipped to them (offsets from shard_offset). */
    int64_t shard_offset, shard_length;
    float *grad_shard, *exp_avg, *exp_avg_sq;
    tp_param_segment *shard_segments;
    int64_t shard_segment_count;
    const volatile sig_atomic_t *stop_signal; /* the program's signal flag (tp_trainer_watch_stop) */
    int stop;                /* a stop was requested on some rank: agreed by every rank after each step */
    tp_step_hooks hooks;     /* tp_trainer_set_hooks; all NULL: none */
    int pass;                /* 0 for a step's first run of its micro-batches, n for its n-th rerun */
    tp_micro_step_fn step_fn; /* during a step: its closure (tp_trainer_rerun) */
    void *step_user;
};

int tp_trainer_init(tp_trainer *trainer, const tp_train_options *options, tp_model *model,
                    const char *model_config_json);
void tp_trainer_free(tp_trainer *trainer);
/* The caller's part of the trainer state (e.g. the data position): named numbers stored under
 * "data" in trainer_state.json.  keys is NULL-terminated; values has one entry per key. */
typedef struct tp_caller_state {
    const char *const *keys;
    double *values;
} tp_caller_state;

/* Loads the newest checkpoint in <output_dir>/checkpoints; *resumed = 0 when there is none.
 * Fills caller->values; a key missing from the checkpoint is an error naming the file. */
int tp_trainer_resume(tp_trainer *trainer, int *resumed, const tp_caller_state *caller);
/* Refuses to start fresh over existing checkpoints (nothing is ever overwritten silently). */
int tp_trainer_check_fresh(tp_trainer *trainer);
/* One optimizer step. */
int tp_trainer_step(tp_trainer *trainer, tp_micro_step_fn micro_step, void *user);
/* After each step, trainer->stop is 1 when *flag (set by the program's signal handler) was set on
 * any rank: every rank stops after the same step. */
void tp_trainer_watch_stop(tp_trainer *trainer, const volatile sig_atomic_t *flag);
/* The usual micro-step body: forward + backward of the model on one host batch (the loss
 * divided by the number of micro-batches), and its metrics.  Its backward in the last micro-batch
 * starts the gradient all-reduce, so it may run only once in that micro-batch (a second call is
 * an error: the gradients are already being summed). */
int tp_trainer_model_step(tp_trainer *trainer, const tp_batch *batch, tp_step_metrics *metrics);
/* For a rank whose shard of a micro-batch is empty (the last batch of a fine-tuning epoch may have
 * fewer rows than ranks): runs tp_trainer_model_step on a stand-in batch (any rows) with loss weight
 * 0, so that this rank takes part in the step's collectives in the others' order, and adds nothing
 * to the gradients or the metrics. */
int tp_trainer_stand_in_step(tp_trainer *trainer, const tp_batch *stand_in, tp_step_metrics *metrics);
/* Installs step hooks (NULL removes them).  One rank only: a rerun would restart the gradient sum
 * over the ranks, so several ranks are refused. */
int tp_trainer_set_hooks(tp_trainer *trainer, const tp_step_hooks *hooks);
/* For a gradients hook: zeroes the gradients and runs the step's micro-batches again at the current
 * parameters (trainer->pass counts the reruns; the closure must feed the same batches again).
 * Dropout draws new masks: a rerun's calls are numbered from pass * 2^20.  The rerun's metrics are
 * not counted. */
int tp_trainer_rerun(tp_trainer *trainer);
/* Pushes rank 0's metric lines (the trainer's and the caller's, written to trainer->metrics_file)
 * to the file: a failed write (disk full) is an error naming the file; the run stops, and the last
 * checkpoint resumes it (docs/robustness.md). */
int tp_trainer_flush_metrics(tp_trainer *trainer);
/* Saves a checkpoint now, with the caller's state under "data". */
int tp_trainer_save(tp_trainer *trainer, const tp_caller_state *caller);

#endif
