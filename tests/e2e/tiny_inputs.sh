# Sourced (after common.sh) by tests that need small valid inputs in the current directory,
# quick to train on even under the sanitizers:
#   tiny_pretraining_inputs  vocab.txt (16 tokens), corpus.txt (3 documents), data.tpd (the bert
#                            processor, seq_length 16, 10 instances)
#   tiny_classifier_inputs   hf/ (the 3-class BertForSequenceClassification of
#                            tests/fixtures/hf_families/bert_cls, vocabulary [PAD].. w5..w39) and
#                            train.tsv (4 examples of its words)

tiny_pretraining_inputs() {
    printf '%s\n' '[PAD]' '[UNK]' '[CLS]' '[SEP]' '[MASK]' the cat sat on mat '##s' dog a . , run >vocab.txt
    printf '%s\n' 'the cat sat on the mat.' 'the dog sat on a cat.' '' 'the cats run, the dogs run!' 'a dog is on the mat.' \
        '' 'the cat.' 'the mat.' >corpus.txt
    "$build/tp-preprocess" --corpus_path corpus.txt --vocab_path vocab.txt --dataset_path data.tpd --seq_length 16 \
        --dup_factor 2 2>preprocess.log || fail "tp-preprocess on the tiny corpus failed: $(cat preprocess.log)"
}

tiny_classifier_inputs() {
    cp -r "$repo/tests/fixtures/hf_families/bert_cls" hf
    printf 'label\ttext_a\n0\tw5 w6 w7\n1\tw8 w9\n2\tw10 w11 w12\n0\tw5 w5\n' >train.tsv
}
