/* Command lines of the tp programs:
 *   --config FILE       the run config (JSON)
 *   --KEY VALUE         override a run-config key (dotted paths reach nested objects)
 *   --KEY=VALUE         the same
 *   --model.KEY VALUE   override a key of the model config the run config names
 *   flags               program-specific switches without a value (e.g. --resume, --help)
 * Values are JSON when they parse as JSON (3, 0.1, true, ["word","pos"]), else strings.
 * Precedence: defaults < config file < command line. */
#ifndef TP_CLI_H
#define TP_CLI_H

#include "config.h"

#define TP_CLI_MAX_OVERRIDES 128

typedef struct tp_cli {
    const char *config_path;
    int override_count;
    const char *keys[TP_CLI_MAX_OVERRIDES];
    const char *values[TP_CLI_MAX_OVERRIDES];
    unsigned flags; /* bit i set: flag_names[i] was given */
} tp_cli;

/* flag_names: NULL-terminated list of value-less switches ("resume", "help"). */
int tp_cli_parse(int argc, char **argv, const char *const *flag_names, tp_cli *cli);
static inline int tp_cli_flag(const tp_cli *cli, int index) { return (cli->flags >> index) & 1u; }
/* Applies the overrides: "model.*" keys to model, the others to run; a NULL config skips its keys
 * (programs apply the run keys first, then the model keys once the run config has named the model). */
int tp_cli_apply(const tp_cli *cli, tp_config *run, tp_config *model);
void tp_cli_free(tp_cli *cli);

/* main() of the training programs: parses the command line with the flags --resume
 * (tp_cli_flag(cli, TP_CLI_RESUME)) and --help (prints usage), requires --config, calls
 * run(cli, job) and cleanup(job), and prints "<program>: error: <message>" on failure.
 * Then leaves the process group of a data-parallel run (core/distributed.h): cleanly after
 * success, and with tp_comm_abort (stopping every rank) after a failure.
 * Returns the exit status: 0, 1 when run failed, 2 for a bad command line. */
enum { TP_CLI_RESUME = 0, TP_CLI_HELP = 1 };
int tp_cli_main(int argc, char **argv, const char *program, const char *usage, int (*run)(void *job, const tp_cli *cli),
                void (*cleanup)(void *job), void *job);

#endif
