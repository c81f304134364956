/**
 * WordPiece model, BERT normalizer / pre-tokenizer and the WordPiece decoder, against Hugging Face
 * `tokenizers` semantics on hand-checked cases: greedy longest-match-first with "##", the whole
 * word → [UNK] when any position fails or it is longer than max_input_chars_per_word (counted in
 * code points), offsets within the piece, JSON round trips through the registry.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { WordPieceDecoder, cleanupTokenization } from '../../src/tokenizers/decoders/wordpiece.js';
import { WordPiece } from '../../src/tokenizers/models/wordpiece.js';
import { BertNormalizer, isChineseChar } from '../../src/tokenizers/normalizers/bert.js';
import { StripAccents, nfdAligned } from '../../src/tokenizers/normalizers/strip-accents.js';
import { BertPreTokenizer } from '../../src/tokenizers/pre-tokenizers/bert.js';
import { Digits } from '../../src/tokenizers/pre-tokenizers/digits.js';
import { Punctuation } from '../../src/tokenizers/pre-tokenizers/punctuation.js';
import { Whitespace, WhitespaceSplit } from '../../src/tokenizers/pre-tokenizers/whitespace.js';
import { decoders, models, normalizers, preTokenizers } from '../../src/tokenizers/registry.js';
import { identityNormalized } from '../../src/tokenizers/tokenizer.js';
import type { Normalized, PreToken } from '../../src/tokenizers/types.js';

const VOCAB = { '[UNK]': 0, un: 1, '##aff': 2, '##able': 3, '##a': 4, a: 5, aff: 6, '##ffa': 7, '##ble': 8, 'Ⓜ': 9, '##😀': 10, '😀': 11 };

function tokens(model: WordPiece, piece: string): [string, number, number, number][] {
  return model.tokenize(piece).map((t) => [t.value, t.id, t.start, t.end]);
}

describe('WordPiece model', () => {
  const wp = new WordPiece(VOCAB);

  it('splits greedily, longest match first, with ## continuations and piece offsets', () => {
    // Longest first: "un" then "##aff" (not "##a"), then "##able".
    expect(tokens(wp, 'unaffable')).toEqual([
      ['un', 1, 0, 2],
      ['##aff', 2, 2, 5],
      ['##able', 3, 5, 9],
    ]);
    expect(tokens(wp, 'aff')).toEqual([['aff', 6, 0, 3]]);
    expect(tokens(wp, 'aaffa')).toEqual([
      ['a', 5, 0, 1],
      ['##aff', 2, 1, 4],
      ['##a', 4, 4, 5],
    ]);
    // Surrogate pairs stay whole.
    expect(tokens(wp, '😀😀')).toEqual([
      ['😀', 11, 0, 2],
      ['##😀', 10, 2, 4],
    ]);
    expect(wp.tokenize('')).toEqual([]);
  });

  it('maps the whole word to [UNK] when any position has no match', () => {
    expect(tokens(wp, 'unx')).toEqual([['[UNK]', 0, 0, 3]]);
    expect(tokens(wp, 'xun')).toEqual([['[UNK]', 0, 0, 3]]);
  });

  it('maps words longer than max_input_chars_per_word (code points) to [UNK]', () => {
    const small = new WordPiece(VOCAB, { maxInputCharsPerWord: 4 });
    expect(tokens(small, 'aaaa').map((t) => t[0])).toEqual(['a', '##a', '##a', '##a']);
    expect(tokens(small, 'aaaaa')).toEqual([['[UNK]', 0, 0, 5]]);
    // Four emoji are 8 UTF-16 units but 4 characters: still under the limit.
    expect(tokens(small, '😀😀😀😀').map((t) => t[0])).toEqual(['😀', '##😀', '##😀', '##😀']);
  });

  it('uses a custom prefix and unknown token, and fails clearly without the unknown token', () => {
    const m = new WordPiece({ '<unk>': 0, ab: 1, '@@c': 2 }, { unkToken: '<unk>', continuingSubwordPrefix: '@@' });
    expect(tokens(m, 'abc').map((t) => t[0])).toEqual(['ab', '@@c']);
    expect(tokens(m, 'abd').map((t) => t[0])).toEqual(['<unk>']);
    const noUnk = new WordPiece({ ab: 0 });
    expect(() => noUnk.tokenize('zz')).toThrow(/unknown token "\[UNK\]" is not in the vocabulary/);
    expect(() => new WordPiece({ a: 0, b: 0 })).toThrow(/id 0 is used by both "a" and "b"/);
  });

  it('agrees with a brute-force reference on random words (fast-check)', () => {
    // Reference: the HF loop written naively.
    const vocab = new Map(Object.entries({ '[UNK]': 0, a: 1, b: 2, ab: 3, '##a': 4, '##b': 5, '##ba': 6, '##bab': 7, c: 8, abc: 9 }));
    const model = new WordPiece(vocab);
    const reference = (w: string): string[] => {
      const out: string[] = [];
      let start = 0;
      while (start < w.length) {
        let end = w.length;
        let cur: string | null = null;
        while (start < end) {
          const sub = (start > 0 ? '##' : '') + w.slice(start, end);
          if (vocab.has(sub)) {
            cur = sub;
            break;
          }
          end--;
        }
        if (cur === null) return ['[UNK]'];
        out.push(cur);
        start = end;
      }
      return out;
    };
    fc.assert(
      fc.property(fc.stringMatching(/^[abcd]{1,12}$/), (w) => {
        expect(model.tokenize(w).map((t) => t.value)).toEqual(reference(w));
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it('round-trips through tokenizer.json and the registry', () => {
    const json = wp.toJSON();
    expect(json).toMatchObject({ type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100 });
    expect(Object.keys(json.vocab as object)[0]).toBe('[UNK]');
    const back = models.fromJSON(JSON.parse(JSON.stringify(json)));
    expect(back.tokenize('unaffable').map((t) => t.id)).toEqual([1, 2, 3]);
    expect(back.idToToken(9)).toBe('Ⓜ');
    expect(back.vocabSize).toBe(12);
    expect(() => models.fromJSON({ type: 'WordPiece', vocab: { a: 'x' } })).toThrow(/vocab\["a"\] must be an integer id/);
  });
});

function norm(n: BertNormalizer, text: string): Normalized {
  return n.normalize(identityNormalized(text));
}

describe('BertNormalizer', () => {
  it('cleans, splits CJK, strips accents and lowercases (uncased defaults)', () => {
    const n = new BertNormalizer();
    expect(norm(n, 'Héllo\tWORLD\u0000\u200b!\ufffd').text).toBe('hello world!');
    expect(norm(n, 'a中b').text).toBe('a 中 b');
    expect(norm(n, 'ÀÉÎÕÜ Ñ').text).toBe('aeiou n');
    // Per-character lowercase: a final capital sigma becomes σ (no final-sigma rule), İ → i̇ then the dot is stripped.
    expect(norm(n, 'ΟΔΟΣ').text).toBe('οδοσ');
    expect(norm(n, 'İ').text).toBe('i');
    // NEL (U+0085) is White_Space but also a control character (Cc), and HF drops controls first;
    // a BOM (Cf) is dropped too; U+2028 (Zl) and U+3000 are whitespace → spaces.
    expect(norm(n, 'a\u0085b\ufeffc\u2028d\u3000e').text).toBe('abc d e');
  });

  it('keeps case and accents when asked (cased models) and strips accents independently', () => {
    expect(norm(new BertNormalizer({ lowercase: false }), 'Héllo 中').text).toBe('Héllo  中 ');
    expect(norm(new BertNormalizer({ lowercase: false, stripAccents: true }), 'Héllo').text).toBe('Hello');
    expect(norm(new BertNormalizer({ lowercase: true, stripAccents: false }), 'Héllo').text).toBe('héllo');
    expect(norm(new BertNormalizer({ handleChineseChars: false }), 'a中b').text).toBe('a中b');
  });

  it('keeps the alignment to the original text', () => {
    const n = new BertNormalizer();
    const r = norm(n, 'Zé中\u0000x');
    expect(r.text).toBe('ze 中 x');
    // The space after 中 maps to the index just past it; x keeps 4 (the NUL at 3 is gone).
    expect(r.align).toEqual([0, 1, 2, 2, 3, 4, 5]);
    // Decomposition: é (U+00E9) → e + U+0301, the mark dropped; the e keeps index 1.
    const d = nfdAligned(identityNormalized('aé😀'));
    expect(d.text).toBe('ae\u0301😀');
    expect(d.align).toEqual([0, 1, 1, 2, 3, 4]);
    // Canonical reordering inside a cluster: the marks keep their own source indices.
    const r2 = nfdAligned(identityNormalized('a\u0301\u0323'));
    expect(r2.text).toBe('a\u0323\u0301');
    expect(r2.align).toEqual([0, 2, 1, 3]);
  });

  it('matches String.prototype.normalize("NFD") on random text (fast-check)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 20 }), (s) => {
        const r = nfdAligned(identityNormalized(s));
        expect(r.text).toBe(s.normalize('NFD'));
        expect(r.align).toHaveLength(r.text.length + 1);
        for (const a of r.align) expect(a).toBeGreaterThanOrEqual(0);
      }),
      { seed: 7, numRuns: 300 },
    );
  });

  it('isChineseChar follows HF ranges', () => {
    expect(isChineseChar(0x4e2d)).toBe(true);
    expect(isChineseChar(0x3042)).toBe(false); // Hiragana
    expect(isChineseChar(0x20000)).toBe(true);
    expect(isChineseChar(0xac00)).toBe(false); // Hangul
  });

  it('round-trips through tokenizer.json', () => {
    const n = normalizers.fromJSON({ type: 'BertNormalizer', clean_text: true, handle_chinese_chars: false, strip_accents: false, lowercase: true });
    expect(n.normalize(identityNormalized('Héllo中')).text).toBe('héllo中');
    expect(n.toJSON()).toEqual({ type: 'BertNormalizer', clean_text: true, handle_chinese_chars: false, strip_accents: false, lowercase: true });
    expect(() => normalizers.fromJSON({ type: 'BertNormalizer', strip_accents: 'yes' })).toThrow(/strip_accents must be true, false or null/);
    expect(new StripAccents().normalize(identityNormalized('e\u0301\u20dd')).text).toBe('e');
    expect(normalizers.fromJSON({ type: 'StripAccents' })).toBeInstanceOf(StripAccents);
  });
});

function pre(p: { preTokenize(x: PreToken[]): PreToken[] }, text: string): [string, number, number][] {
  return p.preTokenize([{ text, start: 0, end: text.length }]).map((t) => [t.text, t.start, t.end]);
}

describe('BERT-family pre-tokenizers', () => {
  it('BertPreTokenizer splits on whitespace and isolates punctuation (ASCII symbols and Unicode P)', () => {
    expect(pre(new BertPreTokenizer(), "Hey friend!     How are you?!?")).toEqual([
      ['Hey', 0, 3],
      ['friend', 4, 10],
      ['!', 10, 11],
      ['How', 16, 19],
      ['are', 20, 23],
      ['you', 24, 27],
      ['?', 27, 28],
      ['!', 28, 29],
      ['?', 29, 30],
    ]);
    // $ + ^ are ASCII punctuation for BERT though Unicode calls them symbols; « » and 、 are P*; € (Sc) is not.
    expect(pre(new BertPreTokenizer(), '$5+x^2 «a»、b €3').map((t) => t[0])).toEqual(['$', '5', '+', 'x', '^', '2', '«', 'a', '»', '、', 'b', '€3']);
  });

  it('Whitespace keeps word runs and symbol runs; WhitespaceSplit only splits on spaces', () => {
    expect(pre(new Whitespace(), "Hey man!  it's ok_ 9€€")).toEqual([
      ['Hey', 0, 3],
      ['man', 4, 7],
      ['!', 7, 8],
      ['it', 10, 12],
      ["'", 12, 13],
      ['s', 13, 14],
      ['ok_', 15, 18],
      ['9', 19, 20],
      ['€€', 20, 22],
    ]);
    expect(pre(new WhitespaceSplit(), 'Hey man!\u3000ok ')).toEqual([
      ['Hey', 0, 3],
      ['man!', 4, 8],
      ['ok', 9, 11],
    ]);
  });

  it('Punctuation and Digits follow their behaviors', () => {
    expect(pre(new Punctuation(), 'Hey friend!!').map((t) => t[0])).toEqual(['Hey friend', '!', '!']);
    expect(pre(new Punctuation('Contiguous'), 'a!!b?').map((t) => t[0])).toEqual(['a', '!!', 'b', '?']);
    expect(pre(new Punctuation('MergedWithPrevious'), 'a!!b').map((t) => t[0])).toEqual(['a!', '!', 'b']);
    expect(pre(new Digits(false), 'Hey 123 friend45²').map((t) => t[0])).toEqual(['Hey ', '123', ' friend', '45²']);
    expect(pre(new Digits(true), 'a123').map((t) => t[0])).toEqual(['a', '1', '2', '3']);
    expect(preTokenizers.fromJSON({ type: 'Digits', individual_digits: true }).toJSON()).toEqual({ type: 'Digits', individual_digits: true });
    expect(preTokenizers.fromJSON({ type: 'Punctuation', behavior: 'Removed' }).toJSON()).toEqual({ type: 'Punctuation', behavior: 'Removed' });
    expect(() => preTokenizers.fromJSON({ type: 'Punctuation', behavior: 'Sideways' })).toThrow(/behavior must be one of/);
    for (const t of ['BertPreTokenizer', 'Whitespace', 'WhitespaceSplit']) expect(preTokenizers.fromJSON({ type: t }).toJSON()).toEqual({ type: t });
  });
});

describe('WordPiece decoder', () => {
  it('joins continuations, spaces words and cleans up tokenization artefacts per token', () => {
    const d = new WordPieceDecoder();
    expect(d.decodeChain(['hello', ',', 'my', 'dog', 'is', 'cu', '##te', '!']).join('')).toBe('hello, my dog is cute!');
    expect(d.decodeChain(['i', 'do', 'not', 'know']).join('')).toBe('i do not know');
    expect(d.decodeChain(['##a', 'b']).join('')).toBe('##a b');
    expect(cleanupTokenization("it ' s . we do not , they 're n't")).toBe("it's. we don't, they'ren't");
    const raw = decoders.fromJSON({ type: 'WordPiece', prefix: '##', cleanup: false });
    expect(raw.decodeChain(['a', ',', '##b']).join('')).toBe('a ,b');
    expect(raw.toJSON()).toEqual({ type: 'WordPiece', prefix: '##', cleanup: false });
  });
});
