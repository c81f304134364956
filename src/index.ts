/** Weft: the LLM stack in TypeScript. */
export * from './tensor/index.js';
