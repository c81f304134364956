/**
 * Backend selection: `WEFT_BACKEND=native|js` (default native). Where the native addon is absent
 * (no compiler at install time), Weft falls back to the js reference backend and says so loudly,
 * once — it is correct but one to two orders of magnitude slower.
 */
import type { Backend } from './backend.js';
import { jsBackend } from './js.js';
import { loadNativeBackend } from './native.js';

export type BackendName = 'native' | 'js';
export type { Backend } from './backend.js';

let active: Backend | null = null;
let nativeCache: Backend | null | undefined;
let warned = false;

function native(): Backend | null {
  if (nativeCache === undefined) nativeCache = loadNativeBackend();
  return nativeCache;
}

/** The backend named, or throws with the way out when it can't be had. */
export function backendByName(name: BackendName): Backend {
  if (name === 'js') return jsBackend;
  const b = native();
  if (b === null) {
    throw new Error(
      "native backend requested but the addon (build/Release/weft.node) is not built: run 'npm rebuild weft' " +
        "(needs g++ and make) or use WEFT_BACKEND=js",
    );
  }
  return b;
}

export function getBackend(): Backend {
  if (active !== null) return active;
  const env = process.env.WEFT_BACKEND;
  if (env !== undefined && env !== '' && env !== 'native' && env !== 'js') {
    throw new Error(`WEFT_BACKEND='${env}' is not a backend: use 'native' or 'js'`);
  }
  if (env === 'native' || env === 'js') {
    active = backendByName(env);
    return active;
  }
  const b = native();
  if (b === null) {
    if (!warned) {
      warned = true;
      process.emitWarning(
        'Weft: the native addon is not built — falling back to the SLOW js backend. ' +
          "Rebuild it with 'npm rebuild weft' (needs g++ and make), or set WEFT_BACKEND=js to silence this.",
        { code: 'WEFT_NO_NATIVE' },
      );
    }
    active = jsBackend;
  } else {
    active = b;
  }
  return active;
}

/** Switches the process-wide backend (tests compare backends this way). */
export function setBackend(name: BackendName): Backend {
  active = backendByName(name);
  return active;
}

export function nativeAvailable(): boolean {
  return native() !== null;
}
