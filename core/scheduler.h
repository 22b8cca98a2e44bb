/* Learning-rate schedules: TencentPretrain's `--scheduler` choices.
 *
 * tp_schedule_factor(s, step) is the multiplier of the base learning rate, as the lr_lambda of
 * PyTorch's LambdaLR: `step` counts scheduler steps from 0, and TencentPretrain's loop
 * (optimizer.step(); scheduler.step()) runs optimizer update t (1-based) with factor(t - 1),
 * so the first update of a warm-up schedule has learning rate 0.
 *
 *   linear, cosine, cosine_with_restarts, polynomial, constant, constant_with_warmup:
 *       exactly transformers' get_*_schedule(_with_warmup) functions (TencentPretrain copies them).
 *   inverse_sqrt, tri_stage: TencentPretrain's own (tencentpretrain/utils/optimizers.py);
 *       transformers' inverse_sqrt is a different formula.
 * Formulas, and where tp accepts settings on which the Python code divides by zero:
 * docs/optim.md. */
#ifndef TP_SCHEDULER_H
#define TP_SCHEDULER_H

#include <stdint.h>

typedef enum tp_schedule_kind {
    TP_SCHEDULE_LINEAR,
    TP_SCHEDULE_COSINE,
    TP_SCHEDULE_COSINE_WITH_RESTARTS,
    TP_SCHEDULE_POLYNOMIAL,
    TP_SCHEDULE_CONSTANT,
    TP_SCHEDULE_CONSTANT_WITH_WARMUP,
    TP_SCHEDULE_INVERSE_SQRT,
    TP_SCHEDULE_TRI_STAGE,
    TP_SCHEDULE_KIND_COUNT
} tp_schedule_kind;

/* The names, indexed by kind and NULL-terminated (usable as tp_config_enum choices). */
extern const char *const tp_schedule_kind_names[TP_SCHEDULE_KIND_COUNT + 1];

typedef struct tp_schedule {
    tp_schedule_kind kind;
    int64_t warmup_steps; /* TencentPretrain passes total_steps * warmup */
    int64_t total_steps;
    /* The optimizer's base learning rate.  Only polynomial and inverse_sqrt use it: their
     * Python lambdas return an absolute lr divided by it (lr_end / lr, 1e-7 / lr). */
    double base_lr;
    double cycles;        /* cosine: waves (default 0.5); cosine_with_restarts: restarts (default 1) */
    double lr_end, power; /* polynomial: absolute end lr (default 1e-7, as transformers), power (default 1) */
    /* tri_stage: warm up from init_scale to 1 over warmup_steps, hold, then decay exponentially
     * over the last decay_steps steps before total_steps to final_scale, and stay there.
     * TencentPretrain has no hold length: it is total - warmup - decay. */
    int64_t decay_steps;
    double init_scale, final_scale; /* defaults 0.01, 0.05 */
} tp_schedule;

/* A schedule of the given kind with every default filled in (steps 0, base_lr 0). */
tp_schedule tp_schedule_defaults(tp_schedule_kind kind);
/* The kind for a name; -1 + "unknown scheduler 'x' (known: linear, cosine, ...)" otherwise. */
int tp_schedule_kind_from_name(const char *name);
/* *out = tp_schedule_defaults(kind of name); -1 (as tp_schedule_kind_from_name) for an unknown name. */
int tp_schedule_from_name(tp_schedule *out, const char *name);
/* "linear, cosine, cosine_with_restarts, ..." for messages. */
const char *tp_schedule_names(void);
/* Rejects settings the Python code rejects or cannot run (e.g. polynomial lr_end >= base_lr,
 * inverse_sqrt without warm-up); -1 + message naming the scheduler and the setting. */
int tp_schedule_check(const tp_schedule *s);
/* The factor at scheduler step `step` (0-based); s must pass tp_schedule_check. */
double tp_schedule_factor(const tp_schedule *s, int64_t step);

#endif
