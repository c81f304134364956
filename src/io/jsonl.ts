/**
 * JSON Lines: one JSON object per line, blank lines skipped. Errors name the file and line.
 */

/** The objects of a JSONL text with their 1-based line numbers; `where` (a path) prefixes every error. */
export function parseJsonlObjects(text: string, where: string): { record: Record<string, unknown>; line: number }[] {
  const out: { record: Record<string, unknown>; line: number }[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new Error(`${where}:${i + 1}: invalid JSON (${(e as Error).message})`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}:${i + 1}: expected a JSON object per line`);
    out.push({ record: v as Record<string, unknown>, line: i + 1 });
  });
  return out;
}
