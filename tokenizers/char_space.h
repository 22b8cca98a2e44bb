/* Internal to tokenizers/: TencentPretrain's CharTokenizer ("char") and SpaceTokenizer
 * ("space") over a one-token-per-line vocabulary. */
#ifndef TP_CHAR_SPACE_H
#define TP_CHAR_SPACE_H

#include "tokenizers/tokenizer.h"

tp_tokenizer *tp_char_create(const tp_tokenizer_options *options);
tp_tokenizer *tp_space_create(const tp_tokenizer_options *options);

#endif
