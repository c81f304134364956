/** Named text transforms a task definition can refer to (code stays out of the task data). */

/**
 * lm-evaluation-harness's `wikitext_detokenizer` (tasks/wikitext/preprocess_wikitext.py): undoes
 * WikiText's tokenisation (" @-@ " → "-", spaces before punctuation, spaced brackets and quotes).
 */
export function wikitextDetokenizer(text: string): string {
  let s = text;
  // contractions
  s = s.replaceAll("s '", "s'");
  s = s.replace(/\/' [0-9]\//g, "/'[0-9]/");
  // number separators
  s = s.replaceAll(' @-@ ', '-');
  s = s.replaceAll(' @,@ ', ',');
  s = s.replaceAll(' @.@ ', '.');
  // punctuation
  s = s.replaceAll(' : ', ': ');
  s = s.replaceAll(' ; ', '; ');
  s = s.replaceAll(' . ', '. ');
  s = s.replaceAll(' ! ', '! ');
  s = s.replaceAll(' ? ', '? ');
  s = s.replaceAll(' , ', ', ');
  // double brackets
  s = s.replace(/\(\s*([^)]*?)\s*\)/g, '($1)');
  s = s.replace(/\[\s*([^\]]*?)\s*\]/g, '[$1]');
  s = s.replace(/{\s*([^}]*?)\s*}/g, '{$1}');
  s = s.replace(/"\s*([^"]*?)\s*"/g, '"$1"');
  s = s.replace(/'\s*([^']*?)\s*'/g, "'$1'");
  // miscellaneous
  s = s.replaceAll('= = = =', '====');
  s = s.replaceAll('= = =', '===');
  s = s.replaceAll('= =', '==');
  s = s.replaceAll(` ${String.fromCharCode(176)} `, String.fromCharCode(176));
  s = s.replaceAll(' \n', '\n');
  s = s.replaceAll('\n ', '\n');
  s = s.replaceAll(' N ', ' 1 ');
  s = s.replaceAll(" 's", "'s");
  return s;
}

const TRANSFORMS: Record<string, (s: string) => string> = {
  wikitext_detokenizer: wikitextDetokenizer,
};

export function getTransform(name: string): (s: string) => string {
  const t = TRANSFORMS[name];
  if (t === undefined) throw new Error(`unknown transform "${name}" (known: ${Object.keys(TRANSFORMS).join(', ')})`);
  return t;
}
