#include "image_sets.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"

int tp_image_set_fails_with(const char *path, const tp_image_set_options *options, const char *message)
{
    tp_image_set set;
    int failed = tp_image_set_read(path, options, &set) < 0;
    int named = failed && strstr(tp_last_error(), message) != NULL;
    if (!named) fprintf(stderr, "expected '%s', got '%s'\n", message, failed ? tp_last_error() : "success");
    if (!failed) tp_image_set_free(&set);
    return named;
}
