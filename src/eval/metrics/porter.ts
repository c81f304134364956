/**
 * NLTK 3.8's `PorterStemmer()` in its default `NLTK_EXTENSIONS` mode, which rouge-score uses. The
 * NLTK extensions differ from Porter's published algorithm (irregular forms, 'ies'/'ied' on
 * four-letter words, 'y' -> 'i' only after a consonant, 'alli' first, 'fulli' and 'logi' rules,
 * words of one or two letters untouched); each is reproduced here in NLTK's order.
 */

const IRREGULAR: ReadonlyMap<string, string> = new Map(
  Object.entries({
    sky: ['sky', 'skies'],
    die: ['dying'],
    lie: ['lying'],
    tie: ['tying'],
    news: ['news'],
    inning: ['innings', 'inning'],
    outing: ['outings', 'outing'],
    canning: ['cannings', 'canning'],
    howe: ['howe'],
    proceed: ['proceed'],
    exceed: ['exceed'],
    succeed: ['succeed'],
  }).flatMap(([stem, forms]) => forms.map((f): [string, string] => [f, stem])),
);

function isConsonant(word: string, i: number): boolean {
  const ch = word[i];
  if (ch === 'a' || ch === 'e' || ch === 'i' || ch === 'o' || ch === 'u') return false;
  if (ch === 'y') return i === 0 ? true : !isConsonant(word, i - 1);
  return true;
}

/** Porter's m: the number of vowel-consonant sequences. */
function measure(stem: string): number {
  let m = 0;
  let prevVowel = false;
  for (let i = 0; i < stem.length; i++) {
    const consonant = isConsonant(stem, i);
    if (consonant && prevVowel) m++;
    prevVowel = !consonant;
  }
  return m;
}

function hasPositiveMeasure(stem: string): boolean {
  return measure(stem) > 0;
}

function containsVowel(stem: string): boolean {
  for (let i = 0; i < stem.length; i++) if (!isConsonant(stem, i)) return true;
  return false;
}

function endsDoubleConsonant(word: string): boolean {
  const n = word.length;
  return n >= 2 && word[n - 1] === word[n - 2] && isConsonant(word, n - 1);
}

function endsCvc(word: string): boolean {
  const n = word.length;
  return (
    (n >= 3 &&
      isConsonant(word, n - 3) &&
      !isConsonant(word, n - 2) &&
      isConsonant(word, n - 1) &&
      !['w', 'x', 'y'].includes(word[n - 1])) ||
    (n === 2 && !isConsonant(word, 0) && isConsonant(word, 1))
  );
}

type Rule = readonly [suffix: string, replacement: string, condition: ((stem: string) => boolean) | null];

/** NLTK's `_apply_rule_list`: the first rule whose suffix matches decides (even if its condition fails). */
function applyRuleList(word: string, rules: readonly Rule[]): string {
  for (const [suffix, replacement, condition] of rules) {
    if (suffix === '*d' && endsDoubleConsonant(word)) {
      const stem = word.slice(0, -2);
      return condition === null || condition(stem) ? stem + replacement : word;
    }
    if (word.endsWith(suffix)) {
      const stem = suffix === '' ? word : word.slice(0, -suffix.length);
      return condition === null || condition(stem) ? stem + replacement : word;
    }
  }
  return word;
}

function step1a(word: string): string {
  if (word.endsWith('ies') && word.length === 4) return word.slice(0, -3) + 'ie';
  return applyRuleList(word, [
    ['sses', 'ss', null],
    ['ies', 'i', null],
    ['ss', 'ss', null],
    ['s', '', null],
  ]);
}

function step1b(word: string): string {
  if (word.endsWith('ied')) return word.slice(0, -3) + (word.length === 4 ? 'ie' : 'i');
  if (word.endsWith('eed')) {
    const stem = word.slice(0, -3);
    return measure(stem) > 0 ? stem + 'ee' : word;
  }
  let intermediate: string | null = null;
  for (const suffix of ['ed', 'ing']) {
    if (word.endsWith(suffix)) {
      const stem = word.slice(0, -suffix.length);
      if (containsVowel(stem)) {
        intermediate = stem;
        break;
      }
    }
  }
  if (intermediate === null) return word;
  const last = intermediate[intermediate.length - 1];
  return applyRuleList(intermediate, [
    ['at', 'ate', null],
    ['bl', 'ble', null],
    ['iz', 'ize', null],
    ['*d', last, () => !['l', 's', 'z'].includes(last)],
    ['', 'e', (stem) => measure(stem) === 1 && endsCvc(stem)],
  ]);
}

function step1c(word: string): string {
  return applyRuleList(word, [['y', 'i', (stem) => stem.length > 1 && isConsonant(stem, stem.length - 1)]]);
}

function step2(word: string): string {
  if (word.endsWith('alli') && hasPositiveMeasure(word.slice(0, -4))) return step2(word.slice(0, -4) + 'al');
  return applyRuleList(word, [
    ['ational', 'ate', hasPositiveMeasure],
    ['tional', 'tion', hasPositiveMeasure],
    ['enci', 'ence', hasPositiveMeasure],
    ['anci', 'ance', hasPositiveMeasure],
    ['izer', 'ize', hasPositiveMeasure],
    ['bli', 'ble', hasPositiveMeasure],
    ['alli', 'al', hasPositiveMeasure],
    ['entli', 'ent', hasPositiveMeasure],
    ['eli', 'e', hasPositiveMeasure],
    ['ousli', 'ous', hasPositiveMeasure],
    ['ization', 'ize', hasPositiveMeasure],
    ['ation', 'ate', hasPositiveMeasure],
    ['ator', 'ate', hasPositiveMeasure],
    ['alism', 'al', hasPositiveMeasure],
    ['iveness', 'ive', hasPositiveMeasure],
    ['fulness', 'ful', hasPositiveMeasure],
    ['ousness', 'ous', hasPositiveMeasure],
    ['aliti', 'al', hasPositiveMeasure],
    ['iviti', 'ive', hasPositiveMeasure],
    ['biliti', 'ble', hasPositiveMeasure],
    ['fulli', 'ful', hasPositiveMeasure],
    // NLTK keeps the 'l' with the stem when measuring, so 'geo'/'theo' stems work.
    ['logi', 'log', () => hasPositiveMeasure(word.slice(0, -3))],
  ]);
}

function step3(word: string): string {
  return applyRuleList(word, [
    ['icate', 'ic', hasPositiveMeasure],
    ['ative', '', hasPositiveMeasure],
    ['alize', 'al', hasPositiveMeasure],
    ['iciti', 'ic', hasPositiveMeasure],
    ['ical', 'ic', hasPositiveMeasure],
    ['ful', '', hasPositiveMeasure],
    ['ness', '', hasPositiveMeasure],
  ]);
}

function step4(word: string): string {
  const gt1 = (stem: string): boolean => measure(stem) > 1;
  return applyRuleList(word, [
    ['al', '', gt1],
    ['ance', '', gt1],
    ['ence', '', gt1],
    ['er', '', gt1],
    ['ic', '', gt1],
    ['able', '', gt1],
    ['ible', '', gt1],
    ['ant', '', gt1],
    ['ement', '', gt1],
    ['ment', '', gt1],
    ['ent', '', gt1],
    ['ion', '', (stem) => measure(stem) > 1 && (stem.endsWith('s') || stem.endsWith('t'))],
    ['ou', '', gt1],
    ['ism', '', gt1],
    ['ate', '', gt1],
    ['iti', '', gt1],
    ['ous', '', gt1],
    ['ive', '', gt1],
    ['ize', '', gt1],
  ]);
}

function step5a(word: string): string {
  if (word.endsWith('e')) {
    const stem = word.slice(0, -1);
    const m = measure(stem);
    if (m > 1) return stem;
    if (m === 1 && !endsCvc(stem)) return stem;
  }
  return word;
}

function step5b(word: string): string {
  return applyRuleList(word, [['ll', 'l', () => measure(word.slice(0, -1)) > 1]]);
}

/** NLTK `PorterStemmer().stem(word)` (NLTK_EXTENSIONS mode, lower-casing on). */
export function porterStem(word: string): string {
  const lower = word.toLowerCase();
  const irregular = IRREGULAR.get(word);
  if (irregular !== undefined) return irregular;
  if (word.length <= 2) return lower;
  let stem = step1a(lower);
  stem = step1b(stem);
  stem = step1c(stem);
  stem = step2(stem);
  stem = step3(stem);
  stem = step4(stem);
  stem = step5a(stem);
  stem = step5b(stem);
  return stem;
}
