/**
 * TemplateProcessing post-processor: special tokens placed around the sequences by a template,
 * e.g. single "[CLS] $A [SEP]", pair "[CLS] $A [SEP] $B:1 [SEP]:1" (the number is the type id).
 * JSON form as HF writes it: single/pair are lists of {"SpecialToken":{id,type_id}} and
 * {"Sequence":{id:"A"|"B",type_id}}; special_tokens maps each name to its ids and tokens.
 */
import { mergeEncodings, specialEncoding } from '../encoding.js';
import { postProcessors } from '../registry.js';
import type { Encoding, Json, JsonObject, PostProcessor } from '../types.js';
import { isObject } from '../util.js';

export type TemplatePiece = { kind: 'special'; id: string; typeId: number } | { kind: 'sequence'; id: 'A' | 'B'; typeId: number };

export interface SpecialTokenSpec {
  id: string;
  ids: number[];
  tokens: string[];
}

/** Parses "[CLS] $A [SEP] $B:1 [SEP]:1" (HF's string form of a template). */
export function parseTemplate(s: string): TemplatePiece[] {
  return s
    .split(/\s+/)
    .filter((w) => w !== '')
    .map((w): TemplatePiece => {
      const m = /^(.*?)(?::(\d+))?$/.exec(w)!;
      const name = m[1];
      const typeId = m[2] === undefined ? 0 : Number(m[2]);
      if (name.startsWith('$')) {
        const v = name.slice(1);
        if (v === '' || v === 'A' || v === 'a') return { kind: 'sequence', id: 'A', typeId };
        if (v === 'B' || v === 'b') return { kind: 'sequence', id: 'B', typeId };
        if (/^\d+$/.test(v)) return { kind: 'sequence', id: 'A', typeId: Number(v) };
        throw new Error(`TemplateProcessing: cannot parse template piece ${JSON.stringify(w)}`);
      }
      return { kind: 'special', id: name, typeId };
    });
}

function pieceFromJSON(j: Json, where: string): TemplatePiece {
  if (isObject(j) && isObject(j.SpecialToken)) {
    const { id, type_id } = j.SpecialToken;
    if (typeof id !== 'string' || typeof type_id !== 'number') throw new Error(`tokenizer.json: ${where}: SpecialToken needs a string id and a numeric type_id`);
    return { kind: 'special', id, typeId: type_id };
  }
  if (isObject(j) && isObject(j.Sequence)) {
    const { id, type_id } = j.Sequence;
    if ((id !== 'A' && id !== 'B') || typeof type_id !== 'number') throw new Error(`tokenizer.json: ${where}: Sequence needs id "A" or "B" and a numeric type_id`);
    return { kind: 'sequence', id, typeId: type_id };
  }
  throw new Error(`tokenizer.json: ${where} must be {"SpecialToken": ...} or {"Sequence": ...}`);
}

function pieceToJSON(p: TemplatePiece): JsonObject {
  return p.kind === 'special' ? { SpecialToken: { id: p.id, type_id: p.typeId } } : { Sequence: { id: p.id, type_id: p.typeId } };
}

export class TemplateProcessing implements PostProcessor {
  readonly single: TemplatePiece[];
  readonly pair: TemplatePiece[];
  readonly specialTokens: Map<string, SpecialTokenSpec>;

  constructor(single: TemplatePiece[] | string, pair: TemplatePiece[] | string, specialTokens: readonly SpecialTokenSpec[]) {
    this.single = typeof single === 'string' ? parseTemplate(single) : single;
    this.pair = typeof pair === 'string' ? parseTemplate(pair) : pair;
    this.specialTokens = new Map(specialTokens.map((s) => [s.id, s]));
    for (const [name, tpl] of [
      ['single', this.single],
      ['pair', this.pair],
    ] as const) {
      for (const p of tpl) {
        if (p.kind === 'special' && !this.specialTokens.has(p.id)) {
          throw new Error(`TemplateProcessing: the ${name} template uses ${JSON.stringify(p.id)}, which is not among special_tokens`);
        }
      }
    }
    for (const s of this.specialTokens.values()) {
      if (s.ids.length !== s.tokens.length) throw new Error(`TemplateProcessing: special token ${JSON.stringify(s.id)} has ${s.ids.length} ids but ${s.tokens.length} tokens`);
    }
  }

  static fromJSON(json: JsonObject): TemplateProcessing {
    const where = 'post_processor (TemplateProcessing)';
    const list = (key: string): TemplatePiece[] => {
      const v = json[key];
      if (typeof v === 'string') return parseTemplate(v);
      if (!Array.isArray(v)) throw new Error(`tokenizer.json: ${where}.${key} must be a list`);
      return v.map((p, i) => pieceFromJSON(p, `${where}.${key}[${i}]`));
    };
    const st = json.special_tokens ?? {};
    if (!isObject(st)) throw new Error(`tokenizer.json: ${where}.special_tokens must be an object`);
    const specs: SpecialTokenSpec[] = Object.entries(st).map(([k, v]) => {
      if (!isObject(v) || !Array.isArray(v.ids) || !Array.isArray(v.tokens)) {
        throw new Error(`tokenizer.json: ${where}.special_tokens[${JSON.stringify(k)}] must have "ids" and "tokens" lists`);
      }
      const ids = v.ids.map((x) => {
        if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) throw new Error(`tokenizer.json: ${where}.special_tokens[${JSON.stringify(k)}].ids must be non-negative integers`);
        return x;
      });
      const tokens = v.tokens.map((x) => {
        if (typeof x !== 'string') throw new Error(`tokenizer.json: ${where}.special_tokens[${JSON.stringify(k)}].tokens must be strings`);
        return x;
      });
      return { id: typeof v.id === 'string' ? v.id : k, ids, tokens };
    });
    try {
      return new TemplateProcessing(list('single'), list('pair'), specs);
    } catch (e) {
      throw new Error(`tokenizer.json: ${(e as Error).message}`);
    }
  }

  toJSON(): JsonObject {
    const special: JsonObject = {};
    for (const [k, v] of [...this.specialTokens].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
      special[k] = { id: v.id, ids: v.ids, tokens: v.tokens };
    }
    return { type: 'TemplateProcessing', single: this.single.map(pieceToJSON), pair: this.pair.map(pieceToJSON), special_tokens: special };
  }

  addedTokens(isPair: boolean): number {
    let n = 0;
    for (const p of isPair ? this.pair : this.single) if (p.kind === 'special') n += this.specialTokens.get(p.id)!.ids.length;
    return n;
  }

  process(encoding: Encoding, pair: Encoding | null, addSpecialTokens: boolean): Encoding {
    const template = pair === null ? this.single : this.pair;
    const parts: Encoding[] = [];
    for (const p of template) {
      if (p.kind === 'sequence') {
        const e = p.id === 'A' ? encoding : pair;
        if (e === null) continue;
        parts.push({ ...e, typeIds: e.typeIds.map(() => p.typeId), sequenceIds: e.sequenceIds.map(() => (p.id === 'A' ? 0 : 1)) });
      } else if (addSpecialTokens) {
        const s = this.specialTokens.get(p.id)!;
        parts.push(specialEncoding(s.ids, s.tokens, p.typeId));
      }
    }
    return mergeEncodings(parts);
  }
}

postProcessors.register('TemplateProcessing', (json) => TemplateProcessing.fromJSON(json));
