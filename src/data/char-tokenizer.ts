/**
 * The quickstart's character tokenizer. It lives with the other tokenizers (src/tokenizers/char.ts)
 * and is saved as a real Hugging Face tokenizer.json; run directories written before that, with
 * `{"type":"char","vocab":[...]}`, still load (CharTokenizer.fromJSON reads both).
 */
export { CharTokenizer } from '../tokenizers/char.js';
