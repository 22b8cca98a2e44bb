/* Real training for tp-select (core/select_train.h) against stand-ins for tp-finetune and tp-infer:
 * small shell scripts that log what they were called with and write the metrics lines and
 * predictions the real programs write (formats: docs/finetune.md), so that every path of the
 * child-process wiring -- arguments, fresh and resumed runs, metrics read back, failures, LEEP from
 * the predictions, the offline phase's tables -- is checked in milliseconds.  The real programs run
 * in tests/e2e/test_select_train.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/select.h"
#include "core/select_train.h"
#include "support/check.h"
#include "support/scratch.h"

/* tp-finetune's stand-in: one dev line for epoch epochs_num (accuracy epochs_num / 10), or with
 * --test_path one test line (accuracy 0.75); FAKE_MODE=fail|stale|nometric misbehaves. */
static const char fake_finetune[] =
    "#!/bin/sh\n"
    "out=; epochs=; test=\n"
    "echo \"$*\" >>\"$FAKE_CALLS\"\n"
    "while [ $# -gt 0 ]; do\n"
    "  case $1 in\n"
    "  --resume) shift ;;\n"
    "  --output_dir) out=$2; shift 2 ;;\n"
    "  --epochs_num) epochs=$2; shift 2 ;;\n"
    "  --test_path) test=$2; shift 2 ;;\n"
    "  *) shift 2 ;;\n"
    "  esac\n"
    "done\n"
    "case $FAKE_MODE in\n"
    "fail) echo 'tp-finetune: error: boom' >&2; exit 1 ;;\n"
    "stale) epochs=$((epochs - 1)) ;;\n"
    "nometric) echo \"{\\\"step\\\":1,\\\"epoch\\\":$epochs,\\\"split\\\":\\\"dev\\\"}\" >>\"$out/metrics.jsonl\"; exit 0 ;;\n"
    "esac\n"
    "echo '{\"step\":1,\"loss\":2.5}' >>\"$out/metrics.jsonl\"\n"
    "if [ -n \"$test\" ]; then\n"
    "  echo '{\"step\":9,\"epoch\":\"best\",\"split\":\"test\",\"accuracy\":0.75}' >>\"$out/metrics.jsonl\"\n"
    "else\n"
    "  echo \"{\\\"step\\\":$epochs,\\\"epoch\\\":$epochs,\\\"split\\\":\\\"dev\\\",\\\"accuracy\\\":0.$epochs}\" "
    ">>\"$out/metrics.jsonl\"\n"
    "fi\n";

/* tp-infer's stand-in: the softmax row (0.25, 0.75) for every input line. */
static const char fake_infer[] =
    "#!/bin/sh\n"
    "echo \"$*\" >>\"$FAKE_CALLS\"\n"
    "while [ $# -gt 0 ]; do\n"
    "  case $1 in\n"
    "  --output_prob) shift ;;\n"
    "  --test_path) inputs=$2; shift 2 ;;\n"
    "  --prediction_path) predictions=$2; shift 2 ;;\n"
    "  *) shift 2 ;;\n"
    "  esac\n"
    "done\n"
    "awk 'NR == 1 { print \"label\\tprob\"; next } { print \"1\\t0.25 0.75\" }' \"$inputs\" >\"$predictions\"\n";

static void write_program(const char *name, const char *text)
{
    const char *path = tp_scratch_write(name, text, strlen(text));
    chmod(path, 0755);
}

static int error_has(const char *fragment)
{
    int found = strstr(tp_last_error(), fragment) != NULL;
    if (!found) fprintf(stderr, "expected '%s' in: %s\n", fragment, tp_last_error());
    return found;
}

static int file_has(const char *path, const char *fragment)
{
    char *text = tp_read_file(path, NULL);
    int found = text && strstr(text, fragment);
    free(text);
    return found;
}

/* Models: a, b (heads of 2 labels), c (no head), d (head of 3 labels), e (missing checkpoint),
 * f (no config). */
static tp_zoo *zoo_with(const char *models)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"format\": \"tp-select-zoo\", \"version\": 1, \"description\": \"stand-ins\", \"epochs\": 2, "
             "\"matrix\": \"m.tsv\", \"models\": [%s]}", models);
    return tp_zoo_parse_manifest("zoo.json", text, tp_scratch_dir());
}

#define MODELS_A_B                                                                                                   \
    "{\"name\": \"a\", \"checkpoint\": \"ckpt/a/model.safetensors\", \"config\": \"config.json\", \"head\": {\"labels\": 2}},"   \
    "{\"name\": \"b\", \"checkpoint\": \"ckpt/b/model.safetensors\", \"config\": \"config.json\", \"head\": {\"labels\": 2}}"
static const char two_models[] = MODELS_A_B;
static const char all_models[] = MODELS_A_B ","
    "{\"name\": \"c\", \"checkpoint\": \"ckpt/a/model.safetensors\", \"config\": \"config.json\"},"
    "{\"name\": \"d\", \"checkpoint\": \"ckpt/a/model.safetensors\", \"config\": \"config.json\", \"head\": {\"labels\": 3}},"
    "{\"name\": \"e\", \"checkpoint\": \"ckpt/x/model.safetensors\", \"config\": \"config.json\"},"
    "{\"name\": \"f\", \"checkpoint\": \"ckpt/a/model.safetensors\"}";

static tp_select_env_options env_options(const char *work, const char *template_name)
{
    static char tasks[4096], work_dir[4096], template_path[4096], bin[4096];
    snprintf(tasks, sizeof tasks, "%s", tp_scratch_path("tasks"));
    snprintf(work_dir, sizeof work_dir, "%s", tp_scratch_path(work));
    snprintf(template_path, sizeof template_path, "%s", tp_scratch_path(template_name));
    snprintf(bin, sizeof bin, "%s", tp_scratch_path("bin"));
    return (tp_select_env_options){tasks, work_dir, template_path, bin, 0, NULL, NULL};
}

static void test_template(const tp_zoo *zoo)
{
    tp_select_env env;
    tp_select_env_options options = env_options("work", "per_run.json");
    CHECK(tp_select_env_open(&env, zoo, &options) != 0 && error_has("per_run.json: key 'train_path': tp-select sets it"));
    options = env_options("work", "linear.json");
    CHECK(tp_select_env_open(&env, zoo, &options) != 0 &&
          error_has("linear.json: key 'scheduler': 'linear': tp-select trains one epoch per run"));
    options = env_options("work", "tagging.json");
    CHECK(tp_select_env_open(&env, zoo, &options) != 0 && error_has("key 'task': 'tagging'"));
    options = env_options("work", "run.json");
    options.bin_dir = tp_scratch_path("tasks");
    CHECK(tp_select_env_open(&env, zoo, &options) != 0 && error_has("tasks/tp-finetune: not found or not executable"));
    options = env_options("work", "constant.json");
    CHECK(tp_select_env_open(&env, zoo, &options) == 0 && !env.default_schedule && !env.infer_threads &&
          strcmp(env.metric, "accuracy") == 0);
    tp_select_env_close(&env);
}

static void test_epochs(const tp_select_env *env)
{
    double dev = -1, seconds = -1;
    const char *calls = tp_scratch_path("calls.txt");
    CHECK(tp_select_train_epoch(env, "t1", 0, 0, &dev, &seconds) == 0 && dev == 0.1 && seconds >= 0);
    CHECK(file_has(calls, "--epochs_num 1 --scheduler constant\n") && file_has(calls, "/ckpt/a/model.safetensors --train_path ") &&
          file_has(calls, "/work/t1/00-a --epochs_num"));
    CHECK(tp_select_train_epoch(env, "t1", 0, 1, &dev, &seconds) == 0 && dev == 0.2);
    CHECK(file_has(calls, "--epochs_num 2 --scheduler constant --resume\n"));
    CHECK(tp_select_test_score(env, "t1", 0, 2, &dev, &seconds) == 0 && dev == 0.75);
    CHECK(file_has(calls, "/tasks/t1/test.tsv --resume\n"));
    CHECK(tp_select_train_epoch(env, "t1", 0, 0, &dev, &seconds) != 0 && error_has("00-a: holds an earlier run"));
    CHECK(tp_select_train_epoch(env, "t1", 1, 1, &dev, &seconds) != 0 && error_has("01-b: no run to continue with epoch 2"));
    CHECK(tp_select_train_epoch(env, "../t1", 1, 0, &dev, &seconds) != 0 && error_has("task '../t1': a task is named"));
    setenv("FAKE_MODE", "fail", 1);
    CHECK(tp_select_train_epoch(env, "t1", 1, 0, &dev, &seconds) != 0 &&
          error_has("tp-finetune failed (exit status 1): tp-finetune: error: boom (log: ") && error_has("01-b/run.log)"));
    setenv("FAKE_MODE", "stale", 1);
    CHECK(tp_select_train_epoch(env, "t2", 1, 0, &dev, &seconds) != 0 &&
          error_has("01-b/metrics.jsonl: the last dev evaluation is not epoch 1's"));
    setenv("FAKE_MODE", "nometric", 1);
    CHECK(tp_select_train_epoch(env, "t3", 0, 0, &dev, &seconds) != 0 &&
          error_has("metrics.jsonl: the last dev evaluation has no number 'accuracy'"));
    unsetenv("FAKE_MODE");
    CHECK(tp_select_check_trainable(env, 4) != 0 && error_has("key 'models[4].checkpoint': ") && error_has("x/model.safetensors: not found"));
    CHECK(tp_select_check_trainable(env, 5) != 0 && error_has("key 'models[5].config': model 'f' has none"));
    CHECK(tp_select_check_task(env, "t9", 0) != 0 && error_has("tasks/t9/train.tsv: missing (task 't9' needs train.tsv, dev.tsv)"));
    CHECK(tp_select_check_task(env, "t3", 1) != 0 && error_has("tasks/t3/test.tsv: missing"));
}

/* Every head says (0.25, 0.75): P(y | z) is y's share for both z, so LEEP = mean log share(y_i). */
static double constant_head_leep(int64_t first, int64_t second)
{
    double n = (double)(first + second);
    return (first * log(first / n) + second * log(second / n)) / n;
}

static void test_leep(const tp_select_env *env)
{
    double leep = 0, seconds = -1;
    CHECK(tp_select_head_leep(env, "t1", 0, &leep, &seconds) == 0 && fabs(leep - constant_head_leep(3, 1)) < 1e-12 &&
          seconds >= 0);
    CHECK(file_has(tp_scratch_path("calls.txt"), "--output_prob --threads 3 --batch_size 8\n"));
    CHECK(file_has(tp_scratch_path("work/t1/leep_inputs.tsv"), "text_a\nthree\nfour\nfive\nsix\n"));
    CHECK(file_has(tp_scratch_path("work/t1/00-a.head_outputs.tsv"), "label\t0\t1\n0\t0.25\t0.75\n1\t0.25\t0.75\n"));
    CHECK(tp_select_head_leep(env, "t1", 2, &leep, &seconds) != 0 && error_has("model 'c' has no head"));
    CHECK(tp_select_head_leep(env, "t1", 3, &leep, &seconds) != 0 &&
          error_has("2 source labels, but the model's head has 3"));
    /* Every second of the 4 examples: labels 0, 0 (one class). */
    tp_select_env half = *env;
    half.options.leep_examples = 2;
    CHECK(tp_select_head_leep(&half, "t1", 0, &leep, &seconds) == 0 && leep == 0);
    CHECK(file_has(tp_scratch_path("work/t1/leep_inputs.tsv"), "text_a\nthree\nfive\n"));
}

/* The LEEP source's stand-in: user points at the target's row of the LEEP table. */
static int fake_leep(void *user, int64_t model, double *leep, double *seconds)
{
    const double *row = user;
    *leep = row[model];
    *seconds = 1;
    return 0;
}

static void test_build(const tp_select_env *options_env)
{
    tp_zoo *zoo = zoo_with(two_models);
    char work[4096];
    snprintf(work, sizeof work, "%s", tp_scratch_path("offline"));
    tp_select_env env = *options_env;
    env.zoo = zoo;
    env.options.work_dir = work;
    char *tasks[] = {"t1", "t2"};
    CHECK(tp_select_build(&env, zoo, tasks, 2, 2) == 0);
    CHECK(zoo->benchmark_count == 2 && zoo->target_count == 2 && zoo->epochs == 2);
    for (int64_t pair = 0; pair < 4; pair++)
        CHECK(zoo->has_curve[pair] && zoo->dev[2 * pair] == 0.1 && zoo->dev[2 * pair + 1] == 0.2 && zoo->scores[pair] == 0.75);
    CHECK(fabs(zoo->leep[0] - constant_head_leep(3, 1)) < 1e-12 && fabs(zoo->leep[1] - constant_head_leep(3, 1)) < 1e-12);
    CHECK(fabs(zoo->leep[2] - constant_head_leep(2, 2)) < 1e-12 && zoo->leep_seconds[3] >= 0);
    CHECK(tp_select_build(&env, zoo, tasks, 2, 2) != 0 && error_has("the zoo has tables already"));
    CHECK(tp_zoo_save(zoo, tp_scratch_path("saved")) == 0);
    tp_zoo_free(zoo);
    /* The saved zoo reads back; the recall with a LEEP source equals the recall from the table. */
    tp_zoo *saved = tp_zoo_load(tp_scratch_path("saved/zoo.json"));
    CHECK(saved && saved->dev[3] == 0.2 && saved->scores[1] == 0.75 && fabs(saved->leep[2] - constant_head_leep(2, 2)) < 1e-12);
    CHECK(saved && strcmp(saved->description, "stand-ins") == 0 && strcmp(saved->models[1].checkpoint, "ckpt/b/model.safetensors") == 0);
    if (!saved) return;
    tp_recall_options recall_options = {1.0, 1, 1, TP_PROXY_ALL};
    tp_recall from_table, from_source;
    tp_leep_source source = {fake_leep, saved->leep + 1 * saved->model_count};
    CHECK(tp_select_run_recall(saved, "t2", &recall_options, &from_table) == 0);
    CHECK(tp_select_run_recall_with(saved, "t2", &recall_options, &source, &from_source) == 0);
    CHECK(from_source.target == -1 && strcmp(from_source.target_name, "t2") == 0 && from_source.leep_seconds == 2);
    CHECK(from_table.recalled[0] == from_source.recalled[0] && from_table.proxy[1] == from_source.proxy[1]);
    tp_recall_free(&from_table);
    tp_recall_free(&from_source);
    tp_zoo_free(saved);
}

int main(void)
{
    tp_scratch_init("select_train");
    char calls[4096];
    snprintf(calls, sizeof calls, "%s", tp_scratch_path("calls.txt"));
    setenv("FAKE_CALLS", calls, 1);
    mkdir(tp_scratch_path("bin"), 0755);
    write_program("bin/tp-finetune", fake_finetune);
    write_program("bin/tp-infer", fake_infer);
    mkdir(tp_scratch_path("ckpt"), 0755);
    mkdir(tp_scratch_path("ckpt/a"), 0755);
    mkdir(tp_scratch_path("ckpt/b"), 0755);
    tp_scratch_write_text("ckpt/a/model.safetensors", "weights");
    tp_scratch_write_text("ckpt/b/model.safetensors", "weights");
    tp_scratch_write_text("config.json", "{}");
    mkdir(tp_scratch_path("tasks"), 0755);
    static const char *const task_names[] = {"t1", "t2", "t3"};
    static const char *const trains[] = {"label\ttext_a\n0\tthree\n1\tfour\n0\tfive\n0\tsix\n",
                                         "label\ttext_a\n0\tone\n1\ttwo\n0\tthree\n1\tfour\n", "label\ttext_a\n0\ta\n1\tb\n"};
    for (int t = 0; t < 3; t++) {
        char name[64];
        snprintf(name, sizeof name, "tasks/%s", task_names[t]);
        mkdir(tp_scratch_path(name), 0755);
        snprintf(name, sizeof name, "tasks/%s/train.tsv", task_names[t]);
        tp_scratch_write_text(name, trains[t]);
        snprintf(name, sizeof name, "tasks/%s/dev.tsv", task_names[t]);
        tp_scratch_write_text(name, trains[t]);
        if (t == 2) continue;
        snprintf(name, sizeof name, "tasks/%s/test.tsv", task_names[t]);
        tp_scratch_write_text(name, trains[t]);
    }
    tp_scratch_write_text("run.json", "{\"seq_length\": 16, \"threads\": 3, \"batch_size\": 8}");
    tp_scratch_write_text("constant.json", "{\"scheduler\": \"constant\"}");
    tp_scratch_write_text("per_run.json", "{\"train_path\": \"x.tsv\"}");
    tp_scratch_write_text("linear.json", "{\"scheduler\": \"linear\"}");
    tp_scratch_write_text("tagging.json", "{\"task\": \"tagging\"}");

    tp_zoo *zoo = zoo_with(all_models);
    CHECK(zoo != NULL);
    if (!zoo) return tp_test_finish("select_train");
    test_template(zoo);
    tp_select_env env;
    tp_select_env_options options = env_options("work", "run.json");
    CHECK(tp_select_env_open(&env, zoo, &options) == 0 && env.default_schedule);
    test_epochs(&env);
    test_leep(&env);
    test_build(&env);
    tp_select_env_close(&env);
    tp_zoo_free(zoo);
    return tp_test_finish("select_train");
}
