/* Continual fine-tuning: tp-finetune --continual MODE --tasks DIR1,DIR2,... (docs/continual.md).
 *
 * The tasks (classification TSV directories: train.tsv, dev.tsv, test.tsv, optionally labels.txt)
 * are learnt one after another by one encoder with one cls head per task, named after the task's
 * directory (`target.cls_<name>.*`): the task is known at test time.  Modes:
 *   seq        plain sequential fine-tuning
 *   replay     + a replay memory: 1% of each task's examples (k-means on pooled encoder outputs),
 *              one batch per old task every replay_freq steps, trained with the old task's head
 *   ewc        + (λ/2) Σ F (θ − θ*)² with F the accumulated importance (core/continual.h);
 *              optional replay
 *   cf         C&F: the Create step, the Find loss, the clamp (core/continual.h); replay by default
 *   multitask  every task at once (batches of one task each, shuffled together): the reference
 *              for intransigence
 * Each task's training keeps the best-on-dev state (accuracy over the union of the dev sets of
 * the tasks seen so far, checked after every epoch) and is followed by the test accuracy on every
 * task seen so far.  Output: the accuracy matrix, average accuracy, forgetting and (with
 * multitask_results) intransigence on stdout and in <output_dir>/continual.jsonl; the final
 * weights with every head in <output_dir>/final, the heads' tasks and labels in
 * <output_dir>/continual.json; each task's training log in <output_dir>/<k>_<name>/metrics.jsonl. */
#ifndef TP_CONTINUAL_RUN_H
#define TP_CONTINUAL_RUN_H

#include <signal.h>

#include "core/config.h"
#include "core/model.h"
#include "tokenizers/tokenizer.h"

typedef struct tp_continual tp_continual;

/* The run-config keys of continual mode, for a program's --help. */
#define TP_CONTINUAL_HELP                                                                                   \
    "  continual                seq, replay, ewc or cf: learn the task directories in `tasks` one after\n" \
    "                           another; multitask: all at once (the reference for intransigence)\n"      \
    "                           (docs/continual.md); train_path, dev_path, test_path and metrics_path\n" \
    "                           are then not used\n"                                                       \
    "  tasks                    task directories, comma-separated or a JSON array; each holds train.tsv,\n" \
    "                           dev.tsv, test.tsv (classification) and optionally labels.txt (one name per\n" \
    "                           class: fixes the head's size); the head of DIR is target.cls_<last part>\n" \
    "  replay                   ewc, cf: also replay a memory of old examples (ewc false, cf true)\n"      \
    "  replay_freq              with replay: one batch per old task every N steps (20)\n"                  \
    "  store_ratio              with replay: share of a task's training examples kept (0.01, at least 1)\n" \
    "  find_lambda              ewc, cf: lambda of the penalty (lambda/2) sum F (theta - theta*)^2 (50000)\n" \
    "  gamma                    ewc, cf: importance accumulation F <- gamma F + F_task (0.95)\n"           \
    "  fisher_estimation_sample_size  ewc, cf: training examples the importance averages over (128)\n"   \
    "  rho                      cf: radius of the Create step and of the clamp (0.65)\n"                    \
    "  adaptive                 cf: adaptive Create step (theta^2 g / ||theta g||) or plain (g / ||g||) (true)\n" \
    "  clamp                    cf: keep each parameter within rho |theta*| of its anchor (true)\n"         \
    "  multitask_results        continual.jsonl of a multitask run over the same tasks: intransigence\n"    \
    "                           against its accuracies (none)\n"

/* Reads the continual keys and the training keys of run (epochs_num, batch_size, seq_length,
 * pooling, learning_rate and the optimizer's, seed, threads, device), reads and encodes the
 * tasks, builds the encoder of model_config (its targets replaced by one cls head per task),
 * checks both configs for unused keys and allocates the parameters (initialised from seed).  The
 * caller may then load pre-trained weights into tp_continual_model(); the heads' names start with
 * "target.".  NULL + a message naming the key, task directory or file. */
tp_continual *tp_continual_open(tp_config *run, tp_config *model_config, const tp_tokenizer *tokenizer);
tp_model *tp_continual_model(tp_continual *continual);
/* Learns the tasks and writes the results (above).  Stops with an error after the step in which
 * *stop became nonzero (a continual run does not resume). */
int tp_continual_train(tp_continual *continual, const volatile sig_atomic_t *stop);
void tp_continual_free(tp_continual *continual);

#endif
