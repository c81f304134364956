/**
 * The units RAG passes around. A loader turns a file into Documents (one per page, section, row or
 * file); a splitter turns a Document into Chunks; a store keeps Chunks with their vectors. Every
 * chunk knows where it came from (source + location) and what it holds (a content hash), which is
 * what citations, incremental ingestion and the embedding cache key on.
 */
import { createHash } from 'node:crypto';

/** Scalar metadata values (what the metadata filters compare). */
export type MetadataValue = string | number | boolean | string[] | number[];
export type Metadata = Record<string, MetadataValue>;

/** Where a piece of text sits in its source. */
export interface Location {
  /** 1-based page (PDF). */
  page?: number;
  /** Markdown / HTML headings enclosing the text, outermost first. */
  headingPath?: string[];
  /** 1-based row (JSONL line or CSV record). */
  row?: number;
  /** [start, end) in UTF-16 code units of the loaded document's text. */
  start?: number;
  end?: number;
}

/** A loaded document: text, where it came from, and any metadata the loader or the user attached. */
export interface Document {
  text: string;
  source: string;
  location: Location;
  metadata: Metadata;
}

/** A chunk ready for a store: a stable id, its text, source, location, content hash and metadata. */
export interface Chunk {
  id: string;
  text: string;
  source: string;
  location: Location;
  /** sha256 hex of the text (the embedding cache key and the change detector). */
  hash: string;
  metadata: Metadata;
}

export function sha256Hex(text: string | Uint8Array): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A readable location: "page 3", "Intro > Setup", "row 12", "chars 100-420". */
export function formatLocation(loc: Location): string {
  const parts: string[] = [];
  if (loc.page !== undefined) parts.push(`page ${loc.page}`);
  if (loc.row !== undefined) parts.push(`row ${loc.row}`);
  if (loc.headingPath !== undefined && loc.headingPath.length > 0) parts.push(loc.headingPath.join(' > '));
  if (loc.start !== undefined && loc.end !== undefined) parts.push(`chars ${loc.start}-${loc.end}`);
  return parts.join(', ');
}
