/* What the image-set tests share (core/preprocess_vit.h). */
#ifndef TP_TEST_IMAGE_SETS_H
#define TP_TEST_IMAGE_SETS_H

#include "core/preprocess_vit.h"

/* 1 when reading path with options fails with an error holding message; else prints what happened
 * instead and returns 0. */
int tp_image_set_fails_with(const char *path, const tp_image_set_options *options, const char *message);

#endif
