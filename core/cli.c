#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "distributed.h"
#include "error.h"

static int flag_index(const char *const *flag_names, const char *name)
{
    for (int i = 0; flag_names && flag_names[i]; i++)
        if (strcmp(flag_names[i], name) == 0) return i;
    return -1;
}

int tp_cli_parse(int argc, char **argv, const char *const *flag_names, tp_cli *cli)
{
    memset(cli, 0, sizeof *cli);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || !arg[2])
            return tp_fail("command line: unexpected argument '%s' (options start with --)", arg);
        const char *name = arg + 2, *equals = strchr(name, '=');
        int flag = equals ? -1 : flag_index(flag_names, name);
        if (flag >= 0) {
            cli->flags |= 1u << flag;
            continue;
        }
        const char *value;
        if (equals) {
            value = equals + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return tp_fail("command line: option '--%s' needs a value", name);
        }
        if (cli->override_count == TP_CLI_MAX_OVERRIDES)
            return tp_fail("command line: more than %d options", TP_CLI_MAX_OVERRIDES);
        char *key = tp_xstrdup(name);
        if (equals) key[equals - name] = 0;
        if (strcmp(key, "config") == 0) {
            cli->config_path = value;
            free(key);
            continue;
        }
        cli->keys[cli->override_count] = key;
        cli->values[cli->override_count++] = value;
    }
    return 0;
}

int tp_cli_apply(const tp_cli *cli, tp_config *run, tp_config *model)
{
    for (int i = 0; i < cli->override_count; i++) {
        const char *key = cli->keys[i];
        int to_model = strncmp(key, "model.", 6) == 0;
        tp_config *target = to_model ? model : run;
        if (!target) continue;
        if (tp_config_set(target, to_model ? key + 6 : key, cli->values[i]) < 0)
            return tp_fail_context("command line: '--%s'", key);
    }
    return 0;
}

void tp_cli_free(tp_cli *cli)
{
    for (int i = 0; i < cli->override_count; i++) free((char *)cli->keys[i]);
    cli->override_count = 0;
}

int tp_cli_main(int argc, char **argv, const char *program, const char *usage, int (*run)(void *job, const tp_cli *cli),
                void (*cleanup)(void *job), void *job)
{
    static const char *const flags[] = {"resume", "help", NULL};
    tp_cli cli;
    if (tp_cli_parse(argc, argv, flags, &cli) < 0) {
        fprintf(stderr, "%s: error: %s\nrun %s --help for usage\n", program, tp_last_error(), program);
        return 2;
    }
    int status = 0;
    if (tp_cli_flag(&cli, TP_CLI_HELP)) {
        fputs(usage, stdout);
    } else if (!cli.config_path) {
        fprintf(stderr, "%s: error: --config is required\nrun %s --help for usage\n", program, program);
        status = 2;
    } else {
        if (run(job, &cli) < 0) {
            fprintf(stderr, "%s: error: %s\n", program, tp_last_error());
            status = 1;
        }
        cleanup(job);
        if (status == 0 && tp_comm_finish() < 0) {
            fprintf(stderr, "%s: error: %s\n", program, tp_last_error());
            status = 1;
        }
        /* A failed rank takes the others down with it instead of leaving them waiting. */
        if (status != 0) tp_comm_abort(status);
    }
    tp_cli_free(&cli);
    return status;
}
