/* Average accuracy, forgetting and intransigence of an accuracy matrix (core/continual.h). */
#include "core/continual.h"

#include <math.h>

double tp_continual_average_accuracy(const double *accuracy, int64_t tasks)
{
    double sum = 0;
    for (int64_t j = 0; j < tasks; j++) sum += accuracy[(tasks - 1) * tasks + j];
    return sum / (double)tasks;
}

double tp_continual_forgetting(const double *accuracy, int64_t tasks)
{
    if (tasks < 2) return NAN;
    double sum = 0;
    for (int64_t j = 0; j < tasks - 1; j++) {
        double best = -INFINITY;
        for (int64_t l = j; l < tasks - 1; l++) best = fmax(best, accuracy[l * tasks + j]);
        sum += best - accuracy[(tasks - 1) * tasks + j];
    }
    return sum / (double)(tasks - 1);
}

double tp_continual_intransigence(const double *accuracy, const double *reference, int64_t tasks)
{
    double sum = 0;
    for (int64_t k = 0; k < tasks; k++) sum += reference[k] - accuracy[k * tasks + k];
    return sum / (double)tasks;
}
