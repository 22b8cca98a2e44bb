#include "core/scheduler.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

/* In tp_schedule_kind order. */
#define SCHEDULE_NAMES(X)                                                                                   \
    X("linear") X("cosine") X("cosine_with_restarts") X("polynomial") X("constant") X("constant_with_warmup") \
    X("inverse_sqrt") X("tri_stage")
#define AS_ARRAY_ITEM(name) name,
#define AS_LIST_ITEM(name) ", " name

const char *const tp_schedule_kind_names[TP_SCHEDULE_KIND_COUNT + 1] = {SCHEDULE_NAMES(AS_ARRAY_ITEM) NULL};
static const char known_names_with_leading_separator[] = SCHEDULE_NAMES(AS_LIST_ITEM);

_Static_assert(sizeof((const char *[]){SCHEDULE_NAMES(AS_ARRAY_ITEM)}) / sizeof(const char *) ==
                   TP_SCHEDULE_KIND_COUNT,
               "one name per tp_schedule_kind");

const char *tp_schedule_names(void) { return known_names_with_leading_separator + 2; }

int tp_schedule_kind_from_name(const char *name)
{
    for (int kind = 0; kind < TP_SCHEDULE_KIND_COUNT; kind++)
        if (strcmp(name, tp_schedule_kind_names[kind]) == 0) return kind;
    return tp_fail("unknown scheduler '%s' (known: %s)", name, tp_schedule_names());
}

int tp_schedule_from_name(tp_schedule *out, const char *name)
{
    int kind = tp_schedule_kind_from_name(name);
    if (kind < 0) return -1;
    *out = tp_schedule_defaults((tp_schedule_kind)kind);
    return 0;
}

tp_schedule tp_schedule_defaults(tp_schedule_kind kind)
{
    return (tp_schedule){
        .kind = kind,
        .cycles = kind == TP_SCHEDULE_COSINE_WITH_RESTARTS ? 1.0 : 0.5,
        .lr_end = 1e-7,
        .power = 1.0,
        .init_scale = 0.01,
        .final_scale = 0.05,
    };
}

int tp_schedule_check(const tp_schedule *s)
{
    if ((int)s->kind < 0 || s->kind >= TP_SCHEDULE_KIND_COUNT)
        return tp_fail("scheduler: unknown kind %d", (int)s->kind);
    const char *name = tp_schedule_kind_names[s->kind];
    if (s->warmup_steps < 0 || s->total_steps < 0)
        return tp_fail("scheduler '%s': warmup steps %lld and total steps %lld must be >= 0", name,
                       (long long)s->warmup_steps, (long long)s->total_steps);
    switch (s->kind) {
    case TP_SCHEDULE_COSINE:
    case TP_SCHEDULE_COSINE_WITH_RESTARTS:
        if (!isfinite(s->cycles)) return tp_fail("scheduler '%s': cycles %g must be finite", name, s->cycles);
        break;
    case TP_SCHEDULE_POLYNOMIAL:
        if (!(s->base_lr > s->lr_end) || !(s->base_lr > 0.0))
            return tp_fail("scheduler 'polynomial': lr_end (%g) must be smaller than the learning rate (%g), "
                           "which must be > 0", s->lr_end, s->base_lr);
        if (!isfinite(s->power)) return tp_fail("scheduler 'polynomial': power %g must be finite", s->power);
        break;
    case TP_SCHEDULE_INVERSE_SQRT:
        if (!(s->base_lr > 0.0))
            return tp_fail("scheduler 'inverse_sqrt': the learning rate (%g) must be > 0", s->base_lr);
        /* Without warm-up TencentPretrain's decay factor is lr * sqrt(0): the lr would stay 0. */
        if (s->warmup_steps < 1) return tp_fail("scheduler 'inverse_sqrt': needs at least 1 warmup step");
        break;
    case TP_SCHEDULE_TRI_STAGE:
        if (s->decay_steps < 0)
            return tp_fail("scheduler 'tri_stage': decay steps %lld must be >= 0", (long long)s->decay_steps);
        if (!(s->final_scale > 0.0) || !isfinite(s->final_scale) || !isfinite(s->init_scale))
            return tp_fail("scheduler 'tri_stage': final scale %g must be > 0 (it decays exponentially) and "
                           "init scale %g finite", s->final_scale, s->init_scale);
        break;
    default:
        break;
    }
    return 0;
}

/* The shared warm-up of the transformers schedules: step / max(1, warmup). */
static double warmup_ramp(const tp_schedule *s, int64_t step)
{
    return (double)step / (double)(s->warmup_steps > 1 ? s->warmup_steps : 1);
}

/* Fraction of the post-warm-up steps done (transformers' `progress`). */
static double progress(const tp_schedule *s, int64_t step)
{
    int64_t span = s->total_steps - s->warmup_steps;
    return (double)(step - s->warmup_steps) / (double)(span > 1 ? span : 1);
}

static double linear(const tp_schedule *s, int64_t step)
{
    int64_t span = s->total_steps - s->warmup_steps;
    return fmax(0.0, (double)(s->total_steps - step) / (double)(span > 1 ? span : 1));
}

static double cosine(const tp_schedule *s, int64_t step)
{
    return fmax(0.0, 0.5 * (1.0 + cos(M_PI * s->cycles * 2.0 * progress(s, step))));
}

static double cosine_with_restarts(const tp_schedule *s, int64_t step)
{
    double done = progress(s, step);
    if (done >= 1.0) return 0.0;
    return fmax(0.0, 0.5 * (1.0 + cos(M_PI * fmod(s->cycles * done, 1.0))));
}

static double polynomial(const tp_schedule *s, int64_t step)
{
    if (step > s->total_steps) return s->lr_end / s->base_lr;
    int64_t decay_steps = s->total_steps - s->warmup_steps;
    /* decay_steps == 0 only at step == total == warmup, where Python divides by zero: the end. */
    double remaining = decay_steps > 0 ? 1.0 - (double)(step - s->warmup_steps) / (double)decay_steps : 0.0;
    double decayed = (s->base_lr - s->lr_end) * pow(remaining, s->power) + s->lr_end;
    return decayed / s->base_lr;
}

/* TencentPretrain's get_inverse_square_root_schedule_with_warmup (warmup_init_lr 0), in its
 * absolute-lr arithmetic so that the factors round as its own. */
static double inverse_sqrt(const tp_schedule *s, int64_t step)
{
    double lr = s->base_lr;
    if (step < s->warmup_steps) return ((double)step * (lr / (double)s->warmup_steps)) / lr;
    if (step > s->total_steps) return 1e-7 / lr;
    return (lr * pow((double)s->warmup_steps, 0.5) * pow((double)step, -0.5)) / lr;
}

/* TencentPretrain's get_tri_stage_schedule, in factors (its lr_hold = 1). */
static double tri_stage(const tp_schedule *s, int64_t step)
{
    if (step < s->warmup_steps)
        return s->init_scale + (double)step * ((1.0 - s->init_scale) / (double)s->warmup_steps);
    int64_t decay_start = s->total_steps - s->decay_steps;
    if (step < decay_start) return 1.0;
    if (step <= s->total_steps) {
        double rate = -log(s->final_scale) / (double)(s->decay_steps > 1 ? s->decay_steps : 1);
        return exp(-rate * (double)(step - decay_start));
    }
    return s->final_scale;
}

double tp_schedule_factor(const tp_schedule *s, int64_t step)
{
    int warming_up = step < s->warmup_steps;
    switch (s->kind) {
    case TP_SCHEDULE_LINEAR: return warming_up ? warmup_ramp(s, step) : linear(s, step);
    case TP_SCHEDULE_COSINE: return warming_up ? warmup_ramp(s, step) : cosine(s, step);
    case TP_SCHEDULE_COSINE_WITH_RESTARTS: return warming_up ? warmup_ramp(s, step) : cosine_with_restarts(s, step);
    case TP_SCHEDULE_POLYNOMIAL: return warming_up ? warmup_ramp(s, step) : polynomial(s, step);
    case TP_SCHEDULE_CONSTANT: return 1.0;
    case TP_SCHEDULE_CONSTANT_WITH_WARMUP: return warming_up ? warmup_ramp(s, step) : 1.0;
    case TP_SCHEDULE_INVERSE_SQRT: return inverse_sqrt(s, step);
    case TP_SCHEDULE_TRI_STAGE: return tri_stage(s, step);
    default: return 0.0;
    }
}
