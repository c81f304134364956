/** `node --import ./scripts/ts-register.mjs file.ts`: runs weft's TypeScript sources (see ts-hooks.mjs). */
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
