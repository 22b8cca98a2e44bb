/* Continual learning over the flat parameter buffers (core/params.h): the pieces of C&F, "Create
 * and Find Flatness" (Shi et al., ECAI 2023, arXiv 2309.11305), of EWC, the replay memory and the
 * continual metrics.  tp-finetune --continual (core/continual_run.h) puts them together;
 * docs/continual.md describes the method and the choices made.
 *
 * Every buffer here is host memory (continual mode runs on the CPU).  Functions that take
 * segments (core/optim.h) work on the floats of the non-frozen segments only.
 *
 * One step of C&F on a batch, with g the gradient of the batch's loss at θ:
 *   Create  ε = ρ θ⊙θ⊙g / (‖|θ|⊙g‖₂ + 1e-12)   (adaptive; non-adaptive ε = ρ g / (‖g‖₂ + 1e-12)),
 *           g_s = the gradient at θ + ε with a new dropout mask, θ restored;
 *   Find    g_s += λ F⊙(θ − θ*), the gradient of (λ/2) Σ F (θ − θ*)², from the second task on;
 *   AdamW with g_s, then the clamp of θ into [θ* − ρ|θ*|, θ* + ρ|θ*|] from the second task on.
 * After each task: F ← γ F + (mean over examples of the squared gradient of log p(y|x)), θ* ← θ. */
#ifndef TP_CONTINUAL_H
#define TP_CONTINUAL_H

#include <stdint.h>

#include "core/ops.h"
#include "core/optim.h"
#include "core/params.h"
#include "core/rng.h"

/* ---- Create (core/continual_create.c) -------------------------------------------------------- */

/* Adds the sharpness-aware perturbation ε (above) for the gradient grad to theta, in place, over
 * the non-frozen segments (the parameters that have gradients in this step).  The norm is
 * accumulated in double in a fixed order.  Returns the norm (‖|θ|⊙g‖₂ or ‖g‖₂). */
double tp_sharpness_perturb(float *theta, const float *grad, const tp_param_segment *segments, int64_t segment_count,
                            double rho, int adaptive);

/* ---- Find, EWC and the clamp (core/continual_penalty.c) --------------------------------------- */

/* (λ/2) Σ F (θ − θ*)² in double: the Find loss of C&F and EWC's penalty. */
double tp_find_penalty(const float *theta, const float *anchor, const float *importance, double lambda,
                       const tp_param_segment *segments, int64_t segment_count);
/* grad += λ F⊙(θ − θ*): the gradient of tp_find_penalty. */
void tp_find_gradient(float *grad, const float *theta, const float *anchor, const float *importance, double lambda,
                      const tp_param_segment *segments, int64_t segment_count);
/* θ ← min(max(θ, θ* − ρ|θ*|), θ* + ρ|θ*|).  A parameter whose anchor is exactly 0 is pinned to 0
 * (its interval is [0, 0]), as in the paper's code. */
void tp_clamp_to_anchor(float *theta, const float *anchor, double rho, const tp_param_segment *segments,
                        int64_t segment_count);

/* ---- importance (core/continual_importance.c) ------------------------------------------------- */

/* Builds, in ctx, the loss -log p(y|x) of one example from the model's parameters. */
typedef tp_tensor *(*tp_example_loss_fn)(tp_ctx *ctx, void *user, int64_t example);

/* importance[i] = (1/count) Σ_e (∂ log p(y_e|x_e) / ∂θ_i)² over examples[0..count): one forward and
 * backward per example, recording, with dropout off (eval mode).  params->grad is the scratch
 * and is left zeroed; importance has params->total floats.  -1 when loss_fn fails (NULL). */
int tp_importance_estimate(tp_params *params, tp_ctx *ctx, tp_example_loss_fn loss_fn, void *user,
                           const int64_t *examples, int64_t count, float *importance);
/* F ← γ F + update over n floats. */
void tp_importance_accumulate(float *importance, const float *update, double gamma, int64_t n);

/* ---- replay memory (core/continual_memory.c) -------------------------------------------------- */

/* k-means of the rows of features [n, dim] (Euclidean; k-means++ seeding drawn from rng; Lloyd
 * rounds until no assignment changes, at most 100) and, for every non-empty cluster in cluster
 * order, the row nearest its centroid (ties: the lower row) into chosen (k entries).  k is cut to
 * n.  Returns the number of rows chosen. */
int64_t tp_memory_select(const float *features, int64_t n, int64_t dim, int64_t k, tp_rng *rng, int64_t *chosen);

/* ---- metrics (core/continual_metrics.c) -------------------------------------------------------- */

/* accuracy[i * tasks + j]: the accuracy on task j after learning tasks 0..i (j <= i).
 * Average accuracy: the mean of the last row. */
double tp_continual_average_accuracy(const double *accuracy, int64_t tasks);
/* Forgetting (Chaudhry et al. 2018): the mean over j < T-1 of max_{j <= l < T-1} a[l][j] - a[T-1][j];
 * NaN with one task. */
double tp_continual_forgetting(const double *accuracy, int64_t tasks);
/* Intransigence (Chaudhry et al. 2018): the mean over k of reference[k] - a[k][k], reference being
 * the multitask model's accuracies. */
double tp_continual_intransigence(const double *accuracy, const double *reference, int64_t tasks);

#endif
