/**
 * Streams generated tokens as text. The whole continuation is re-decoded each step because
 * SentencePiece / byte-level pieces only decode correctly in context (leading spaces, multi-byte
 * characters split across tokens); only the new suffix is written.
 */
export function tokenStreamer(decode: (ids: readonly number[]) => string, write: (text: string) => void): (id: number) => void {
  const soFar: number[] = [];
  let shown = '';
  return (id) => {
    soFar.push(id);
    const text = decode(soFar);
    if (text.startsWith(shown)) write(text.slice(shown.length));
    shown = text;
  };
}
