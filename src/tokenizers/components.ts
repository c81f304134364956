/**
 * Imports every pipeline component for its registration side effect, so tokenizer.json loading
 * (registry.ts) knows all `type` names whichever module the caller imported first.
 */
import './models/bpe.js';
import './normalizers/unicode.js';
import './normalizers/lowercase.js';
import './normalizers/strip.js';
import './normalizers/replace.js';
import './normalizers/prepend.js';
import './normalizers/sequence.js';
import './pre-tokenizers/byte-level.js';
import './pre-tokenizers/split.js';
import './pre-tokenizers/sequence.js';
import './decoders/byte-level.js';
import './processors/byte-level.js';
import './processors/template.js';
import './processors/bert.js';
import './processors/roberta.js';
import './processors/sequence.js';
import './decoders/byte-fallback.js';
import './decoders/fuse.js';
import './decoders/metaspace.js';
import './decoders/replace.js';
import './decoders/sequence.js';
import './decoders/strip.js';
import './decoders/wordpiece.js';
import './models/unigram.js';
import './models/wordlevel.js';
import './models/wordpiece.js';
import './normalizers/bert.js';
import './normalizers/strip-accents.js';
import './pre-tokenizers/bert.js';
import './pre-tokenizers/digits.js';
import './pre-tokenizers/metaspace.js';
import './pre-tokenizers/punctuation.js';
import './pre-tokenizers/whitespace.js';
