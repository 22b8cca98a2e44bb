/* tp_task_configure_head (core/finetune_task.h): the task's head replaces the model config's
 * target and labels_num; the run's `pooling` defaults to the model config's own (a converted BEiT
 * mean-pooling classifier keeps patch_mean unless the run says otherwise), else first; tagging
 * does not read `pooling`, so a run that sets it is refused as unused. */
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "core/finetune_task.h"
#include "support/check.h"

/* The model config's pooling after configuring a head of `kind` with the run `run_json`. */
static void expect_pooling(tp_task_kind kind, const char *model_json, const char *run_json, const char *want)
{
    tp_config *model = tp_config_parse("model", model_json), *run = tp_config_parse("run", run_json);
    const char *pooling = NULL, *const *target = NULL;
    int count = 0;
    int64_t labels = 0;
    CHECK_MSG(model && run && tp_task_configure_head(kind, 3, run, model) == 0, "%s", tp_last_error());
    CHECK(tp_config_string(model, "pooling", "(none)", &pooling) == 0);
    CHECK_MSG(!strcmp(pooling, want), "%s + %s: pooling %s, expected %s", model_json, run_json, pooling, want);
    CHECK(tp_config_strings(model, "target", &target, &count) == 0 && count == 1 &&
          !strcmp(target[0], tp_task_target_name(kind)));
    CHECK(tp_config_int(model, "labels_num", 0, 0, 100, &labels) == 0 && labels == 3);
    CHECK_MSG(tp_config_check_unused(run) == 0 && tp_config_check_unused(model) == 0, "%s", tp_last_error());
    tp_config_free(model);
    tp_config_free(run);
}

int main(void)
{
    const char *beit = "{\"pooling\": \"patch_mean\", \"target\": [\"cls\"], \"labels_num\": 1000}";
    expect_pooling(TP_TASK_CLASSIFICATION, beit, "{}", "patch_mean");
    expect_pooling(TP_TASK_CLASSIFICATION, beit, "{\"pooling\": \"first\"}", "first");
    expect_pooling(TP_TASK_MULTI_LABEL, "{\"target\": [\"mlm\", \"sp\"]}", "{}", "first");
    expect_pooling(TP_TASK_CLASSIFICATION, "{}", "{\"pooling\": \"mean\"}", "mean");
    /* Tagging has no pooling: the run's key is left unread. */
    tp_config *model = tp_config_parse("model", "{}"), *run = tp_config_parse("run", "{\"pooling\": \"mean\"}");
    CHECK(model && run && tp_task_configure_head(TP_TASK_TAGGING, 3, run, model) == 0);
    CHECK(tp_config_check_unused(run) < 0 && strstr(tp_last_error(), "'pooling'"));
    tp_config_free(model);
    tp_config_free(run);
    return tp_test_finish("test_task_head");
}
