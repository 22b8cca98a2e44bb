#!/usr/bin/env bash
# tp-finetune's speech2text task and tp-infer on its checkpoint, end to end (docs/media.md):
#   - four synthetic 8 kHz utterances (seeded harmonic glides and noise bursts of different
#     pitches and lengths, written here with Python's wave module) with distinct transcripts, a
#     character vocabulary with "|" for the space; a 32-wide speech-to-text model (random init)
#     trained on them until it overfits; the dev evaluation (the same list) reaches WER 0 and the
#     best weights are kept;
#   - tp-infer on the best weights decodes the four utterances exactly with num_beams 1 (greedy) and
#     4 (beam search): WER 0, one transcript per line, as in the list;
#   - SpecAugment from the model config (TencentPretrain's keys) changes the training losses, the
#     same in two runs, and tp-infer accepts the checkpoint's config;
#   - tp-generate (audio_file) on the model config and weights writes tp-infer's 4-beam transcripts;
#   - a list of `path` lines (no transcripts) is transcribed without scores;
#   - bad inputs: a missing and a corrupt audio file, each named with the list's line; exit 1; with
#     skip_bad_audio they are left out and counted instead (tp-infer and tp-finetune).
# TP_TEST_QUICK=1 (sanitizer runs): a few epochs, no WER threshold.
# Usage: tests/e2e/test_finetune_speech2text.sh BUILD_DIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

/usr/bin/python3 - "$work" <<'PY' || fail "writing the utterances"
import math, random, sys, wave
work = sys.argv[1]
rate = 8000
# (transcript, [(pitch Hz or 0 for noise, seconds), ...])
utterances = [("one", [(140, 0.30)]), ("two three", [(220, 0.20), (0, 0.10), (330, 0.25)]),
              ("four", [(0, 0.15), (110, 0.25)]), ("five six", [(300, 0.15), (160, 0.15), (0, 0.20)])]
rng = random.Random(3)
with open(work + "/list.tsv", "w") as listing:
    for n, (text, parts) in enumerate(utterances):
        samples = []
        for pitch, seconds in parts:
            count = int(seconds * rate)
            for i in range(count):
                window = math.sin(math.pi * i / count)
                if pitch:
                    phase = 2 * math.pi * pitch * i / rate
                    value = sum(math.sin(k * phase) / k for k in range(1, 8)) * 0.3
                else:
                    value = rng.uniform(-0.5, 0.5)
                samples.append(int(32767 * 0.8 * window * value) + rng.randint(-30, 30))
        path = "%s/u%d.wav" % (work, n)
        with wave.open(path, "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(rate)
            f.writeframes(b"".join(max(-32768, min(32767, s)).to_bytes(2, "little", signed=True) for s in samples))
        listing.write("%s\t%s\n" % (text, path))
PY
printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n|\n' >"$work/vocab.txt"
printf '%s\n' e f i n o r h s t u v w x >>"$work/vocab.txt"
cat >"$work/model.json" <<'JSON'
{ "emb_size": 32, "hidden_size": 32, "feedforward_size": 64, "heads_num": 4, "layers_num": 2,
  "decoder_layers_num": 1, "max_seq_length": 32, "dropout": 0.0, "hidden_act": "relu",
  "embedding": ["speech", "fairseq_sinusoidalpos"], "tgt_embedding": ["word", "fairseq_sinusoidalpos"],
  "position_offset": 2, "scale_embedding": true, "remove_embedding_layernorm": true,
  "encoder": "transformer", "decoder": "transformer", "mask": "fully_visible",
  "layernorm_positioning": "pre", "layernorm": "normal_torch", "layernorm_eps": 1e-5,
  "target": ["lm"], "tie_weights": true, "conv_layers_num": 2, "conv_channels": 32,
  "audio_feature_size": 40, "conv_kernel_sizes": [5, 5] }
JSON
epochs=100
[ "$quick" = 1 ] && epochs=3
cat >"$work/run.json" <<JSON
{ "task": "speech2text", "model": "$work/model.json", "tokenizer": "char", "vocab_path": "$work/vocab.txt",
  "word_delimiter": "|", "train_path": "$work/list.tsv", "dev_path": "$work/list.tsv",
  "epochs_num": $epochs, "batch_size": 4, "tgt_seq_length": 16, "learning_rate": 1e-2, "warmup": 0.05,
  "correct_bias": true, "report_steps": 1000, "seed": 7, "threads": 1 }
JSON

# ---- learning ----
"$build/tp-finetune" --config "$work/run.json" --output_dir "$work/out" 2>"$work/out.log" ||
    fail "training: $(tail -3 "$work/out.log")"
best=$(grep '"split":"dev"' "$work/out/metrics.jsonl" | sed -E 's/.*"wer":([-0-9.e]+).*/\1/' | sort -g | head -1)
echo "speech2text: best dev WER $best after $epochs epochs; last: $(grep '"split":"dev"' "$work/out/metrics.jsonl" | tail -1)"
grep -Eq '"task":[[:space:]]*"speech2text"' "$work/out/best/task.json" || fail "best/task.json: $(cat "$work/out/best/task.json")"
[ "$quick" = 1 ] || [ "$best" = 0 ] || fail "dev WER $best, not 0: $(tail -3 "$work/out.log")"

# ---- SpecAugment (the model config's TencentPretrain keys): other training losses, reproducibly ----
sed 's/"audio_feature_size": 40,/"audio_feature_size": 40, "specaugment": {"freq_mask_F": 8, "freq_mask_N": 2, "time_mask_N": 2, "time_mask_T": 10, "time_mask_p": 0.3, "time_wrap_W": 0},/' \
    "$work/model.json" >"$work/augmented.json"
grep -q specaugment "$work/augmented.json" || fail "no specaugment in the model config"
train_losses() { grep '"split":"dev"' "$1/metrics.jsonl" | sed -E 's/.*"train_loss":([-0-9.e]+).*/\1/'; }
for run in plain augmented1 augmented2; do
    model="$work/augmented.json"
    [ $run = plain ] && model="$work/model.json"
    "$build/tp-finetune" --config "$work/run.json" --model "$model" --epochs_num 2 --output_dir "$work/$run" \
        2>"$work/$run.log" || fail "$run: $(tail -3 "$work/$run.log")"
done
[ "$(train_losses "$work/augmented1")" = "$(train_losses "$work/augmented2")" ] ||
    fail "SpecAugment runs differ: $(train_losses "$work/augmented1" | tr '\n' ' ') / $(train_losses "$work/augmented2" | tr '\n' ' ')"
[ "$(train_losses "$work/plain")" != "$(train_losses "$work/augmented1")" ] || fail "SpecAugment changed no loss"
"$build/tp-infer" --checkpoint "$work/augmented1" --test_path "$work/list.tsv" --prediction_path "$work/aug.tsv" \
    --threads 1 2>"$work/aug.log" || fail "tp-infer on a config with specaugment: $(tail -3 "$work/aug.log")"

# ---- tp-infer: greedy and beam search decode the training utterances ----
for beams in 1 4; do
    "$build/tp-infer" --checkpoint "$work/out" --test_path "$work/list.tsv" --num_beams $beams \
        --prediction_path "$work/pred$beams.tsv" --threads 1 2>"$work/infer$beams.log" ||
        fail "tp-infer num_beams $beams: $(tail -3 "$work/infer$beams.log")"
    grep -q "WER" "$work/infer$beams.log" || fail "tp-infer num_beams $beams printed no WER"
    [ "$(wc -l <"$work/pred$beams.tsv")" = 5 ] || fail "num_beams $beams: $(wc -l <"$work/pred$beams.tsv") lines"
    if [ "$quick" != 1 ]; then
        grep -q "WER 0.0000 (0 errors" "$work/infer$beams.log" || fail "num_beams $beams: $(cat "$work/infer$beams.log")"
        diff <(tail -n +2 "$work/pred$beams.tsv") <(cut -f1 "$work/list.tsv") >/dev/null ||
            fail "num_beams $beams transcripts: $(tail -n +2 "$work/pred$beams.tsv" | tr '\n' '/')"
    fi
done

# ---- tp-generate decodes the same utterances from the model config and weights ----
weights="$work/out/best/$(cat "$work/out/best/latest")/model.safetensors"
"$build/tp-generate" --model "$work/model.json" --pretrained_model_path "$weights" \
    --tokenizer char --vocab_path "$work/vocab.txt" --word_delimiter "|" --audio_file "$work/list.tsv" \
    --num_beams 4 --new_tokens 16 --output_path "$work/generated.txt" --threads 1 2>"$work/generate.log" ||
    fail "tp-generate: $(tail -3 "$work/generate.log")"
grep -q "WER" "$work/generate.log" || fail "tp-generate printed no WER: $(cat "$work/generate.log")"
diff "$work/generated.txt" <(tail -n +2 "$work/pred4.tsv") >/dev/null ||
    fail "tp-generate and tp-infer differ: $(tr '\n' '/' <"$work/generated.txt")"
status=0
"$build/tp-generate" --model "$work/model.json" --pretrained_model_path "$weights" \
    --tokenizer char --vocab_path "$work/vocab.txt" --audio_file "$work/list.tsv" --kv_cache false \
    2>"$work/generate.log" || status=$?
[ $status = 1 ] && grep -q "key 'kv_cache': speech is decoded with the caches only" "$work/generate.log" ||
    fail "tp-generate kv_cache false with audio: exit $status, $(cat "$work/generate.log")"

# ---- a list to transcribe: paths only, no scores ----
cut -f2 "$work/list.tsv" >"$work/paths.tsv"
"$build/tp-infer" --checkpoint "$work/out/best" --test_path "$work/paths.tsv" --prediction_path "$work/paths.out" \
    --threads 1 2>"$work/paths.log" || fail "transcribing paths: $(tail -3 "$work/paths.log")"
[ "$(wc -l <"$work/paths.out")" = 5 ] && ! grep -q WER "$work/paths.log" || fail "paths: $(cat "$work/paths.log")"
[ "$quick" = 1 ] || cmp -s "$work/paths.out" "$work/pred1.tsv" || fail "paths transcribed differently"

# ---- bad inputs: the audio file named with its line ----
printf 'one\t%s\ntwo\t%s\n' "$work/u0.wav" "$work/absent.wav" >"$work/missing.tsv"
printf 'one\t%s\ntwo\t%s\n' "$work/u0.wav" "$work/vocab.txt" >"$work/corrupt.tsv"
for bad in missing corrupt; do
    status=0
    "$build/tp-infer" --checkpoint "$work/out" --test_path "$work/$bad.tsv" --prediction_path "$work/bad.out" \
        2>"$work/bad.log" || status=$?
    [ $status = 1 ] || fail "$bad audio: exit $status"
    grep -q "error: $work/$bad.tsv: line 2: " "$work/bad.log" || fail "$bad audio: $(cat "$work/bad.log")"
    [ ! -e "$work/bad.out" ] || fail "$bad audio: predictions written"
done
# skip_bad_audio: tp-infer transcribes the readable line and counts the other; tp-finetune trains on
# the readable lines of a list with both bad files.
"$build/tp-infer" --checkpoint "$work/out" --test_path "$work/missing.tsv" --prediction_path "$work/skip.out" \
    --skip_bad_audio true 2>"$work/skip.log" || fail "tp-infer skip_bad_audio: $(tail -3 "$work/skip.log")"
grep -q "$work/missing.tsv: skipped 1 utterances whose audio could not be read (the first: $work/missing.tsv: line 2: " \
    "$work/skip.log" && [ "$(wc -l <"$work/skip.out")" = 2 ] || fail "tp-infer skip_bad_audio: $(cat "$work/skip.log")"
cat "$work/list.tsv" "$work/missing.tsv" <(tail -1 "$work/corrupt.tsv") >"$work/skip_train.tsv"
"$build/tp-finetune" --config "$work/run.json" --train_path "$work/skip_train.tsv" --epochs_num 1 --skip_bad_audio true \
    --output_dir "$work/skip" 2>"$work/skip_train.log" || fail "tp-finetune skip_bad_audio: $(tail -3 "$work/skip_train.log")"
grep -q "skip_train.tsv: skipped 2 utterances whose audio could not be read" "$work/skip_train.log" ||
    fail "tp-finetune skip_bad_audio: $(cat "$work/skip_train.log")"
echo "test_finetune_speech2text: OK"
