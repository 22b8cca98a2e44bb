/* The training loop shared by tp-pretrain and tp-finetune.
 *
 * One optimizer step calls the step closure accumulation_steps times (each
 * call runs forward + backward of one micro-batch and returns its loss), then
 * checks the gradients, clips, updates with AdamW over the flat buffers and
 * zeroes the gradients.  The closure may run the model more than once per
 * call (sharpness-aware training needs a second forward/backward).  Progress
 * goes to stderr, metrics to a JSONL file, checkpoints to <output_dir>/checkpoints. */
#ifndef TP_TRAINER_H
#define TP_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
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

struct tp_trainer {
    tp_train_options options;
    tp_model *model;
    tp_ctx ctx;
    float *exp_avg, *exp_avg_sq;
    tp_param_segment *segments;
    int64_t segment_count;
    int64_t step;            /* optimizer steps done */
    int64_t bad_steps;       /* consecutive non-finite steps */
    tp_step_metrics window;  /* since the last report */
    int64_t window_steps;
    double window_seconds;
    FILE *metrics_file;
    const char *model_config_json;
    char checkpoint_root[4096];
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
/* The usual micro-step body: forward + backward of the model on one host batch (the loss
 * divided by the number of micro-batches), and its metrics. */
int tp_trainer_model_step(tp_trainer *trainer, const tp_batch *batch, tp_step_metrics *metrics);
/* Saves a checkpoint now, with the caller's state under "data". */
int tp_trainer_save(tp_trainer *trainer, const tp_caller_state *caller);

#endif
