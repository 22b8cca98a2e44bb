#include "support/fixture.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const tp_st_tensor *tp_fixture_tensor(const tp_st_file *file, const char *generator, const char *fmt, ...)
{
    char name[256];
    va_list args;
    va_start(args, fmt);
    vsnprintf(name, sizeof name, fmt, args);
    va_end(args);
    const tp_st_tensor *t = tp_st_find(file, name);
    if (!t) {
        fprintf(stderr, "%s: no tensor '%s' (rerun %s)\n", tp_st_path(file), name, generator);
        exit(1);
    }
    return t;
}
