/**
 * The quickstart's character tokenizer. It lives with the other tokenizers (src/tokenizers/char.ts)
 * and is saved as a real Hugging Face tokenizer.json; run directories written before that, with
 * `{"type":"char","vocab":[...]}`, still load.
 */
import { CharTokenizer } from '../tokenizers/char.js';

export { CharTokenizer };

/** Reads a run directory's tokenizer.json (either form), failing with what does not fit. */
export function tokenizerFromJSON(json: unknown): CharTokenizer {
  return CharTokenizer.fromJSON(json);
}
