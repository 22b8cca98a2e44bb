/* The run-config keys of the tokenizer (core/run_tokenizer.h). */
#include "run_tokenizer.h"

#include <stdio.h>
#include <unistd.h>

#include "error.h"

/* A file of the model directory, if it exists. */
static const char *model_file(const char *model_dir, const char *name, char *buffer, size_t size)
{
    if (!model_dir) return NULL;
    snprintf(buffer, size, "%s/%s", model_dir, name);
    return access(buffer, R_OK) == 0 ? buffer : NULL;
}

tp_tokenizer *tp_run_tokenizer(tp_config *run, const char *model_dir)
{
    tp_tokenizer_options options = {0};
    options.do_lower_case = 1;
    int has_kind = tp_config_has(run, "tokenizer");
    if (tp_config_string(run, "tokenizer", "bert", &options.kind) < 0 ||
        tp_config_string(run, "vocab_path", NULL, &options.vocab_path) < 0 ||
        tp_config_string(run, "merges_path", NULL, &options.merges_path) < 0 ||
        tp_config_string(run, "spm_model_path", NULL, &options.spm_model_path) < 0 ||
        tp_config_string(run, "tokenizer_json_path", NULL, &options.tokenizer_json_path) < 0 ||
        tp_config_bool(run, "do_lower_case", 1, &options.do_lower_case) < 0)
        return NULL;
    char vocab[4200], tokenizer_json[4200];
    if (!has_kind && !options.vocab_path && !options.tokenizer_json_path) {
        /* A model directory brings its own tokenizer: WordPiece's vocab.txt, else tokenizer.json. */
        if ((options.vocab_path = model_file(model_dir, "vocab.txt", vocab, sizeof vocab))) {
            options.kind = "bert";
        } else if ((options.tokenizer_json_path = model_file(model_dir, "tokenizer.json", tokenizer_json,
                                                             sizeof tokenizer_json))) {
            options.kind = "hf";
        }
    }
    tp_tokenizer *tokenizer = tp_tokenizer_create(&options);
    if (!tokenizer) tp_fail_context("%s", tp_config_name(run));
    return tokenizer;
}
