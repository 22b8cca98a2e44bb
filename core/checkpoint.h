/* Checkpoints: one directory per saved step,
 *   <root>/step-00000100/model.safetensors      weights, TencentPretrain names, logical shapes
 *                        optimizer.safetensors  "exp_avg.<name>", "exp_avg_sq.<name>"
 *                        trainer_state.json     step, data position, RNG seed, metric windows
 *   <root>/latest                              "step-00000100"
 * A checkpoint is written into "<dir>.tmp.<pid>", every file fsync'd, then the
 * directory is renamed into place and "latest" replaced atomically: a crash at
 * any moment leaves the previous checkpoint complete and named by "latest". */
#ifndef TP_CHECKPOINT_H
#define TP_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "params.h"

/* Writes a checkpoint for step; keeps the newest `keep` checkpoints (0 = all).
 * exp_avg / exp_avg_sq (flat, backend memory) may be NULL (weights only).
 * metadata_json goes into model.safetensors' metadata as "model_config". */
int tp_checkpoint_save(const char *root, int64_t step, const tp_params *params, const float *exp_avg,
                       const float *exp_avg_sq, const char *model_config_json, const char *state_json, int keep);
/* Finds the newest complete checkpoint directory: 1 and its path in out, 0 when there is none. */
int tp_checkpoint_latest(const char *root, char *out, size_t cap);
/* Loads weights strictly: every parameter present with its exact logical shape and dtype F32,
 * no unknown tensors (the error names the first offending tensor). */
int tp_checkpoint_load_weights(const char *safetensors_path, tp_params *params);
/* Loads the parameters whose names do not start with skip_prefix (e.g. "target." when a
 * fine-tuning head replaces the pre-training heads): each must be present with its exact shape
 * (the error names the first missing or mismatching tensor); other tensors in the file are
 * ignored.  Returns the number of parameters loaded. */
int64_t tp_checkpoint_load_backbone(const char *safetensors_path, tp_params *params, const char *skip_prefix);
int tp_checkpoint_load_moments(const char *safetensors_path, const tp_params *params, float *exp_avg,
                               float *exp_avg_sq);

#endif
