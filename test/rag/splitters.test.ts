/**
 * Splitters. The recursive splitter's expected chunks are derived by hand from LangChain's
 * algorithm (split on the first separator present, keep the separator at the start of the next
 * piece, recurse into pieces ≥ chunkSize, merge with overlap, trim) — the first case is LangChain's
 * own test_iterative_text_splitter.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  MarkdownTextSplitter,
  RecursiveCharacterTextSplitter,
  SentenceSplitter,
  TokenTextSplitter,
  isMostlyCJK,
  markdownSections,
  splitDocuments,
} from '../../src/rag/splitters.js';
import { Tokenizer } from '../../src/tokenizers/tokenizer.js';

describe('RecursiveCharacterTextSplitter (LangChain semantics)', () => {
  it("matches LangChain's iterative splitter test (chunkSize 10, overlap 1)", () => {
    const text = "Hi.\n\nI'm Harrison.\n\nHow? Are? You?\nOkay then f f f f.\nThis is a weird text to write, but gotta test the splittingggg some how.\n\nBye!\n\n-H.";
    const out = new RecursiveCharacterTextSplitter({ chunkSize: 10, chunkOverlap: 1 }).splitText(text);
    expect(out).toEqual(['Hi.', "I'm", 'Harrison.', 'How? Are?', 'You?', 'Okay then', 'f f f f.', 'This is a', 'weird', 'text to', 'write,', 'but gotta', 'test the', 'splitting', 'gggg', 'some how.', 'Bye!', '-H.']);
  });

  it('merges words with overlap exactly as mergeSplits does', () => {
    // Hand-derived: pieces "aaaa", " bbbb", " cccc", " dddd"; overlap keeps the last piece (5 ≤ 5).
    const s = new RecursiveCharacterTextSplitter({ chunkSize: 10, chunkOverlap: 5 });
    expect(s.splitText('aaaa bbbb cccc dddd')).toEqual(['aaaa bbbb', 'bbbb cccc', 'cccc dddd']);
    // No overlap: each chunk starts fresh.
    expect(new RecursiveCharacterTextSplitter({ chunkSize: 10, chunkOverlap: 0 }).splitText('aaaa bbbb cccc dddd')).toEqual(['aaaa bbbb', 'cccc dddd']);
  });

  it('defaults to 1000/200 and keeps every chunk within size, as substrings with correct spans', () => {
    const s = new RecursiveCharacterTextSplitter();
    expect([s.chunkSize, s.chunkOverlap]).toEqual([1000, 200]);
    const para = (i: number): string => `Paragraph ${i}. ` + 'word '.repeat(40 + ((i * 37) % 90)).trim();
    const text = Array.from({ length: 40 }, (_, i) => para(i)).join('\n\n');
    const pieces = s.splitWithSpans(text);
    expect(pieces.length).toBeGreaterThan(5);
    for (const p of pieces) {
      expect(p.text.length).toBeLessThanOrEqual(1000);
      expect(text.slice(p.start, p.end)).toBe(p.text);
    }
    // Paragraphs are never cut (each is < 1000 chars): every chunk starts at a paragraph.
    for (const p of pieces) expect(p.text.startsWith('Paragraph ')).toBe(true);
    // Consecutive chunks overlap by whole paragraphs when one fits in 200 chars, else not at all.
    for (let i = 1; i < pieces.length; i++) expect(pieces[i]!.start).toBeLessThanOrEqual(pieces[i - 1]!.end + 2);
  });

  it('splits Chinese on its own punctuation, keeping it with the sentence', () => {
    const text = '第一句话。第二句话！第三句话？';
    expect(isMostlyCJK(text)).toBe(true);
    const s = new RecursiveCharacterTextSplitter({ chunkSize: 6, chunkOverlap: 0, separators: 'auto' });
    expect(s.splitText(text)).toEqual(['第一句话。', '第二句话！', '第三句话？']);
    const two = new RecursiveCharacterTextSplitter({ chunkSize: 11, chunkOverlap: 0, separators: 'auto' });
    expect(two.splitText('刘备字玄德，涿郡人。关羽字云长，河东人。')).toEqual(['刘备字玄德，涿郡人。', '关羽字云长，河东人。']);
  });

  it('rejects overlap ≥ size', () => {
    expect(() => new RecursiveCharacterTextSplitter({ chunkSize: 10, chunkOverlap: 10 })).toThrow(/chunkOverlap/);
  });
});

describe('SentenceSplitter', () => {
  it('packs whole sentences, overlapping by trailing sentences', () => {
    const text = 'One. Two! Three? Four.';
    expect(new SentenceSplitter({ chunkSize: 12, chunkOverlap: 0 }).splitText(text)).toEqual(['One. Two!', 'Three? Four.']);
    expect(new SentenceSplitter({ chunkSize: 12, chunkOverlap: 6 }).splitText(text)).toEqual(['One. Two!', 'Two! Three?', 'Three? Four.']);
    expect(new SentenceSplitter({ chunkSize: 12, chunkOverlap: 0 }).splitText('天下大势。分久必合！合久必分？')).toEqual(['天下大势。分久必合！', '合久必分？']);
  });
});

describe('MarkdownTextSplitter', () => {
  const md = '# Title\nintro text\n\n## Setup\ninstall it\n```\n# not a heading\n```\n### Linux\napt\n## Use\nrun it\n';
  it('cuts at headings outside code fences and keeps heading paths', () => {
    const secs = markdownSections(md).map((s) => [s.headingPath.join(' > '), md.slice(s.start, s.end).split('\n')[0]]);
    expect(secs).toEqual([
      ['Title', '# Title'],
      ['Title > Setup', '## Setup'],
      ['Title > Setup > Linux', '### Linux'],
      ['Title > Use', '## Use'],
    ]);
    const pieces = new MarkdownTextSplitter({ chunkSize: 200, chunkOverlap: 0 }).splitWithSpans(md);
    expect(pieces.map((p) => p.headingPath)).toEqual([['Title'], ['Title', 'Setup'], ['Title', 'Setup', 'Linux'], ['Title', 'Use']]);
    expect(pieces[1]!.text).toContain('# not a heading');
    for (const p of pieces) expect(md.slice(p.start, p.end)).toBe(p.text);
  });

  it('chunks carry source, span, heading path and a content hash', () => {
    const chunks = splitDocuments([{ text: md, source: 'doc.md', location: { start: 0, end: md.length }, metadata: { lang: 'en' } }], new MarkdownTextSplitter({ chunkSize: 200, chunkOverlap: 0 }));
    expect(chunks[2]!.location.headingPath).toEqual(['Title', 'Setup', 'Linux']);
    expect(chunks[2]!.metadata).toEqual({ lang: 'en' });
    expect(chunks[2]!.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(chunks.length);
  });
});

const GPT2 = '../shared/data/gpt2/tokenizer.json';
describe.skipIf(!existsSync(GPT2))('TokenTextSplitter (GPT-2 tokenizer from ../shared/data)', () => {
  it('cuts windows of N tokens with M shared, each the exact text its tokens cover', () => {
    const tok = Tokenizer.fromFile(GPT2);
    const text = 'Retrieval-augmented generation grounds answers in documents, and cites them so readers can check.';
    const offsets = tok.encodeFull(text, null, { addSpecialTokens: false }).offsets;
    const pieces = new TokenTextSplitter({ tokenizer: tok, chunkSize: 5, chunkOverlap: 2 }).splitWithSpans(text);
    const n = offsets.length;
    const expected: string[] = [];
    for (let i = 0; i < n; i += 3) {
      const last = Math.min(n, i + 5) - 1;
      expected.push(text.slice(offsets[i]![0], offsets[last]![1]));
      if (last === n - 1) break;
    }
    expect(pieces.map((p) => p.text)).toEqual(expected);
    for (const p of pieces) expect(tok.encode(p.text, { addSpecialTokens: false }).length).toBeLessThanOrEqual(5);
    expect(pieces[pieces.length - 1]!.end).toBe(text.length);
  });
});
