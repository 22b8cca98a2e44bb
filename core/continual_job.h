/* The state of a continual run, shared by its files: core/continual_run.c (keys, model, training),
 * core/continual_tasks.c (task directories, heads), core/continual_report.c (results).
 * Private to them; programs use core/continual_run.h. */
#ifndef TP_CONTINUAL_JOB_H
#define TP_CONTINUAL_JOB_H

#include <signal.h>
#include <stdio.h>

#include "core/continual.h"
#include "core/continual_run.h"
#include "core/finetune_task.h"
#include "core/trainer.h"

typedef enum tp_continual_mode {
    TP_CONTINUAL_SEQ,
    TP_CONTINUAL_REPLAY,
    TP_CONTINUAL_EWC,
    TP_CONTINUAL_CF,
    TP_CONTINUAL_MULTITASK,
} tp_continual_mode;

enum { TP_CONTINUAL_TRAIN, TP_CONTINUAL_DEV, TP_CONTINUAL_TEST, TP_CONTINUAL_SPLITS };

typedef struct tp_continual_task {
    char *dir;
    char *name;                    /* the head's: the directory's last part */
    char head_prefix[256];         /* "target.cls_<name>" */
    tp_tsv_task *files[TP_CONTINUAL_SPLITS];
    tp_encoded_split splits[TP_CONTINUAL_SPLITS];
    int64_t labels_num;
    char **label_names;            /* labels_num names: labels.txt's, else train.tsv's ids */
    void *head;                    /* a cls target (modules/targets/cls.c) */
    int64_t first_segment, segment_count; /* the head's parameters among the trainer's segments */
    int64_t *memory, memory_count; /* replay memory: rows of the training split */
    char output_dir[4096];         /* <output_dir>/<k>_<name>: this task's training log */
} tp_continual_task;

struct tp_continual {
    tp_continual_mode mode;
    int create, find, clamp, replay, adaptive;
    double rho, lambda, gamma, store_ratio;
    int64_t replay_freq, fisher_samples;
    const char *multitask_results;
    tp_config *run, *model_config; /* model_config: the encoder-only copy, owned */
    const tp_tokenizer *tokenizer;
    const char *output_dir;
    uint64_t seed;
    int64_t batch_size, seq_length, epochs;
    tp_model model;
    char *model_config_json;
    tp_continual_task *tasks;
    int64_t task_count;
    /* Training. */
    tp_train_options options;
    tp_trainer trainer;
    int trainer_open;
    tp_batch batch;                /* the step's rows (reruns feed them again) */
    int64_t current, active;       /* the task being learnt; the head of the step */
    double epoch_loss;
    int64_t epoch_steps;
    tp_param_segment *constrained; /* the step's trainable segments without the current head */
    float *anchor, *importance, *scratch, *best; /* params->total floats each */
    int anchored;                  /* anchor and importance hold earlier tasks' */
    tp_rng sample_rng;             /* replay batches, importance examples, memory seeding */
    tp_ctx eval_ctx;
    const volatile sig_atomic_t *stop;
    /* Results. */
    double *accuracy;              /* [tasks * tasks] test accuracy after task i on task j (multitask: last row) */
    double *reference;             /* [tasks] the multitask run's accuracies (multitask_results), or NULL */
    FILE *log;                     /* <output_dir>/continual.jsonl */
};

extern const char *const tp_continual_mode_names[];

/* continual_tasks.c */
int tp_continual_read_tasks(tp_continual *c);
/* Declares every task's head (cls target) in the model; after tp_model_build, before allocation. */
int tp_continual_declare_heads(tp_continual *c);
void tp_continual_tasks_free(tp_continual *c);
/* Forward of the encoder and task's head on a host batch (ctx->record / training as set). */
int tp_continual_head_forward(tp_continual *c, tp_ctx *ctx, const tp_batch *batch, int64_t task,
                              tp_target_result *out);

/* continual_report.c */
/* c->reference from multitask_results, matched to the tasks by name. */
int tp_continual_read_reference(tp_continual *c);
int tp_continual_open_log(tp_continual *c);
int tp_continual_log_epoch(tp_continual *c, int64_t task, int64_t epoch, const double *dev, double selection);
/* After task `row` (sequential modes) or the joint training (multitask, row = tasks - 1). */
int tp_continual_report_row(tp_continual *c, int64_t row, int64_t seen);
int tp_continual_report_summary(tp_continual *c);
int tp_continual_save(tp_continual *c);

#endif
