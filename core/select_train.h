/* Real training for tp-select (docs/select.md, "Real training"): tp-finetune and tp-infer run as
 * child processes on a zoo's models and a directory of classification tasks.
 *
 *   <tasks>/<task>/{train,dev,test}.tsv    TencentPretrain TSV files (test.tsv: for the matrix and
 *                                          the chosen model's test score)
 *   <work>/<task>/<NN>-<model>/            output_dir of model NN's fine-tuning on the task
 *                                          (checkpoints, best/, metrics.jsonl) and run.log, the
 *                                          children's command lines, stdout and stderr
 *   <work>/<task>/leep_inputs.tsv          the texts the heads see (LEEP)
 *   <work>/<task>/<NN>-<model>/head_outputs.tsv
 *                                          the head's softmax outputs with the target labels
 *
 * One epoch is one tp-finetune run with epochs_num = epochs done + 1, with --resume after the
 * first: its exact resume continues after the last epoch, so a model trained epoch by epoch
 * follows the trajectory of one run over all epochs, provided the learning rate does not depend
 * on the run's length.  The run template must therefore use the constant schedule (the default
 * here); a decaying schedule would be stretched every time epochs_num grows.
 *
 * Library code: failures return -1 with tp_fail (a child's failure names its log and quotes the
 * log's last line); progress goes to an optional callback. */
#ifndef TP_SELECT_TRAIN_H
#define TP_SELECT_TRAIN_H

#include <stdint.h>

#include "select.h"

typedef struct tp_select_env_options {
    const char *tasks_dir;     /* directory of task directories */
    const char *work_dir;      /* runs go to <work>/<task>/<NN>-<model> */
    const char *template_path; /* tp-finetune run-config template (tokenizer, seq_length, batch_size, ...) */
    const char *bin_dir;       /* holds tp-finetune and tp-infer */
    int64_t leep_examples;     /* training examples of the target the heads see; 0: all */
    /* Called with one line of progress (no newline); NULL: none. */
    void (*progress)(void *user, const char *line);
    void *progress_user;
} tp_select_env_options;

typedef struct tp_select_env {
    const tp_zoo *zoo;
    tp_select_env_options options;
    const char *metric;     /* the dev score's key in tp-finetune's metrics: "accuracy" */
    char *infer_threads;    /* the template's threads and batch_size, passed on to tp-infer (NULL: none) */
    char *infer_batch_size;
    int default_schedule;   /* the template names no scheduler: runs get "constant" */
} tp_select_env;

/* Checks the template (a classification run; no key tp-select sets per run: model, train_path,
 * output_dir, epochs_num, ...; scheduler absent or constant) and that bin_dir holds the programs. */
int tp_select_env_open(tp_select_env *env, const tp_zoo *zoo, const tp_select_env_options *options);
void tp_select_env_close(tp_select_env *env);

/* The task's directory holds train.tsv and dev.tsv (and test.tsv when need_test). */
int tp_select_check_task(const tp_select_env *env, const char *task, int need_test);
/* The model can be fine-tuned: its manifest entry has a config and a checkpoint (a
 * model.safetensors file) that exist. */
int tp_select_check_trainable(const tp_select_env *env, int64_t model);

/* Trains model for its epoch number `epoch` (0-based: it has trained `epoch` epochs on the task
 * before; 0 needs a fresh run directory) and reads the dev score after it from the run's metrics;
 * seconds: the run's wall clock. */
int tp_select_train_epoch(const tp_select_env *env, const char *task, int64_t model, int64_t epoch, double *dev_score,
                          double *seconds);
/* The test score of the model's best-on-dev weights after `epochs` epochs (tp-finetune resumed
 * with nothing left to train evaluates test.tsv). */
int tp_select_test_score(const tp_select_env *env, const char *task, int64_t model, int64_t epochs, double *score,
                         double *seconds);
/* LEEP of the model's source head on the task's training examples: tp-infer's softmax outputs
 * (one forward pass) paired with the target labels.  A model without a head is refused. */
int tp_select_head_leep(const tp_select_env *env, const char *task, int64_t model, double *leep, double *seconds);

/* The offline phase: fine-tunes every model on every task for `epochs` epochs (epoch by epoch,
 * timed), evaluates test with the best-on-dev weights, and computes LEEP of every model with a
 * head on every task.  Fills the zoo's tables (it must have none yet): benchmarks = tasks, the
 * matrix (test scores), the curves and the LEEP table (targets = tasks). */
int tp_select_build(const tp_select_env *env, tp_zoo *zoo, char *const *tasks, int64_t task_count, int64_t epochs);

#endif
