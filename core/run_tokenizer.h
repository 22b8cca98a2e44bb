/* The tokenizer a run config names, for every program that reads text (tp-pretrain,
 * tp-finetune; tp-preprocess takes the same names as options).  Keys:
 *   tokenizer            bert (default), bpe / gpt2, sentencepiece, char, space, hf
 *   vocab_path           bert, char, space: one token per line; bpe: vocab.json
 *   merges_path          bpe: merges.txt
 *   spm_model_path       sentencepiece: the .model file
 *   tokenizer_json_path  hf: a Hugging Face tokenizer.json
 *   do_lower_case        bert: lower-case and strip accents (true)
 * Errors are prefixed with the run config's name. */
#ifndef TP_RUN_TOKENIZER_H
#define TP_RUN_TOKENIZER_H

#include "config.h"
#include "tokenizers/tokenizer.h"

/* model_dir: a Hugging Face model directory or NULL; when no tokenizer key is given, its
 * vocab.txt (bert) or else its tokenizer.json (hf) is used. */
tp_tokenizer *tp_run_tokenizer(tp_config *run, const char *model_dir);

/* The lines of --help that describe the keys above (a literal, for the programs' usage texts). */
#define TP_RUN_TOKENIZER_HELP                                                                           \
    "  tokenizer                bert, bpe (= gpt2), sentencepiece, char, space or hf (bert)\n"          \
    "  vocab_path               bert/char/space: vocabulary, one token per line; bpe: vocab.json\n"    \
    "  merges_path              bpe: merges.txt\n"                                                     \
    "  spm_model_path           sentencepiece: the .model file\n"                                      \
    "  tokenizer_json_path      hf: a Hugging Face tokenizer.json\n"                                   \
    "  do_lower_case            bert: lower-case and strip accents (true)\n"

#endif
