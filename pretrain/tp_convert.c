/* tp-convert: Hugging Face BERT / RoBERTa / ALBERT / GPT-2 / ViT / BEiT / CLIP / T5 / BART / Pegasus directories
 * <-> tp checkpoints (TencentPretrain names); the name maps are in core/hf*.h and docs/convert.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/hf.h"

#define MAX_VOCAB_FILES 16

static const char usage[] =
    "usage: tp-convert --from-hf HF_DIR --to OUT_DIR\n"
    "       tp-convert --to-hf --model MODEL_CONFIG.json --weights MODEL.safetensors [--vocab FILE ...]\n"
    "                  --to OUT_DIR\n"
    "\n"
    "Converts models between Hugging Face's layout and names and tp's (TencentPretrain's): the BERT,\n"
    "RoBERTa and ALBERT families with their task heads (masked LM, pre-training (MLM + NSP / SOP),\n"
    "sequence classification), GPT-2, ViT, BEiT, CLIP (CLIPModel), and the encoder-decoders T5 / T5 v1.1,\n"
    "BART and Pegasus\n"
    "(T5ForConditionalGeneration, BartForConditionalGeneration, PegasusForConditionalGeneration).\n"
    "Tensors are copied bit for bit: HF -> tp -> HF gives back the same tensors.  docs/convert.md\n"
    "has the name maps and what is kept or dropped.\n"
    "\n"
    "  --from-hf HF_DIR     a Hugging Face directory: config.json (model_type bert, roberta, albert,\n"
    "                       gpt2, vit, beit, clip, t5, bart or pegasus; architectures[0] decides the\n"
    "                       heads)\n"
    "                       and\n"
    "                       model.safetensors (float32).  Writes OUT_DIR/model.safetensors (tp\n"
    "                       names; loadable as pretrained_model_path or with tp-pretrain /\n"
    "                       tp-finetune),\n"
    "                       OUT_DIR/model_config.json (TencentPretrain keys + tp's; the original\n"
    "                       config.json kept under \"huggingface\") and copies the tokenizer files\n"
    "                       (vocab.txt, vocab.json, merges.txt, spiece.model, tokenizer*.json, ...).\n"
    "                       Tensors tp has no place for are refused, except known ones that are\n"
    "                       dropped and listed: old buffers (position_ids), the pooler of bare\n"
    "                       models, heads of other architectures, copies of tied weights, Pegasus's\n"
    "                       fixed sinusoid tables.\n"
    "  --to-hf              the other way: needs --model and --weights.\n"
    "  --model FILE         tp model config (e.g. OUT_DIR/model_config.json of --from-hf, or the\n"
    "                       model config a tp-pretrain run used).  The family follows from it: a\n"
    "                       dual embedding (stream_0 / stream_1) -> CLIP; causal mask -> GPT-2;\n"
    "                       patch embedding -> ViT; masked_patch embedding -> BEiT (BeitModel,\n"
    "                       BeitForImageClassification); a decoder -> T5 with\n"
    "                       relative_position_embedding, BART with a pos embedding, else Pegasus;\n"
    "                       factorized_embedding_parameterization -> ALBERT, position_offset > 0 ->\n"
    "                       RoBERTa, else BERT; the targets give the architecture (none: *Model,\n"
    "                       mlm: *ForMaskedLM, mlm + sp: *ForPreTraining, sp:\n"
    "                       BertForNextSentencePrediction, cls: *ForSequenceClassification).\n"
    "                       Configs Hugging Face cannot express are refused naming the key: it\n"
    "                       needs torch layer norms (layernorm, embedding_layernorm and\n"
    "                       target_layernorm \"normal_torch\"), post-LN, the word, pos and seg\n"
    "                       embeddings, a fully visible mask, biases, cls pooling \"first\"; the\n"
    "                       encoder-decoders need their family's norms, positions, biases and\n"
    "                       target [lm] (docs/convert.md lists each check).\n"
    "  --weights FILE       tp weights matching the model config exactly (a checkpoint's\n"
    "                       model.safetensors); the first missing, unknown or mis-shaped tensor is\n"
    "                       named.  Writes OUT_DIR/config.json and OUT_DIR/model.safetensors (Hugging\n"
    "                       Face names, metadata format \"pt\").\n"
    "  --vocab FILE         a tokenizer file to copy into OUT_DIR (repeatable, up to 16); without\n"
    "                       any, the tokenizer files next to --weights are copied.\n"
    "  --to OUT_DIR         the output directory; it must not exist.  Everything is written under\n"
    "                       OUT_DIR.tmp.<pid> and renamed into place: OUT_DIR appears complete or\n"
    "                       not at all.\n"
    "  --help               this text\n"
    "\n"
    "Exit status: 0 on success, 1 on any error (one message naming the file and the key or tensor),\n"
    "2 on bad usage.\n";

typedef struct arguments {
    const char *from_hf, *model, *weights, *out;
    const char *vocab[MAX_VOCAB_FILES];
    int to_hf, vocab_count, help;
} arguments;

static int bad_usage(const char *message, const char *argument)
{
    fprintf(stderr, "tp-convert: %s%s%s\n(tp-convert --help for usage)\n", message, argument ? ": " : "",
            argument ? argument : "");
    return 2;
}

/* 0, or the exit status for bad usage (the message printed). */
static int parse(int argc, char **argv, arguments *args)
{
    memset(args, 0, sizeof *args);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char **target = NULL;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            args->help = 1;
            return 0;
        }
        if (!strcmp(arg, "--to-hf")) {
            args->to_hf = 1;
            continue;
        }
        if (!strcmp(arg, "--from-hf")) target = &args->from_hf;
        else if (!strcmp(arg, "--model")) target = &args->model;
        else if (!strcmp(arg, "--weights")) target = &args->weights;
        else if (!strcmp(arg, "--to")) target = &args->out;
        else if (!strcmp(arg, "--vocab")) {
            if (args->vocab_count == MAX_VOCAB_FILES) return bad_usage("too many --vocab files (at most 16)", NULL);
            target = &args->vocab[args->vocab_count++];
        } else
            return bad_usage("unknown option", arg);
        if (i + 1 >= argc) return bad_usage("missing value after", arg);
        *target = argv[++i];
    }
    if (!args->from_hf == !args->to_hf) return bad_usage("give exactly one of --from-hf HF_DIR and --to-hf", NULL);
    if (!args->out) return bad_usage("missing --to OUT_DIR", NULL);
    if (args->from_hf && (args->model || args->weights || args->vocab_count))
        return bad_usage("--model, --weights and --vocab go with --to-hf", NULL);
    if (args->to_hf && (!args->model || !args->weights)) return bad_usage("--to-hf needs --model and --weights", NULL);
    return 0;
}

int main(int argc, char **argv)
{
    arguments args;
    int usage_status = parse(argc, argv, &args);
    if (usage_status) return usage_status;
    if (args.help) {
        fputs(usage, stdout);
        return 0;
    }
    tp_hf_report report;
    int status = args.from_hf ? tp_hf_convert_from_hf(args.from_hf, args.out, &report)
                              : tp_hf_convert_to_hf(args.model, args.weights, args.vocab, args.vocab_count, args.out,
                                                    &report);
    if (status < 0) {
        fprintf(stderr, "tp-convert: %s\n", tp_last_error());
        return 1;
    }
    fprintf(stderr, "tp-convert: wrote %s (%lld tensors)\n", args.out, (long long)report.written);
    if (report.dropped)
        fprintf(stderr, "tp-convert: dropped %lld tensors tp has no place for: %s\n", (long long)report.dropped,
                report.dropped_names);
    return 0;
}
