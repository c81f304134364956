/**
 * The pipeline's native text kernels (native/text.cc) are looked up once, by name, and may be
 * missing (an addon built before them, or none at all): each caller then takes its TypeScript path,
 * which is also the kernel's specification. WEFT_NATIVE_TEXT=0 turns them all off.
 */
import { nativeAddonExports } from '../../tensor/backend/native.js';

export interface NativeKernel<F> {
  /** The addon's function, or null. */
  get(): F | null;
  /** Tests compare both paths: off forces the TypeScript one; on looks the function up again. */
  use(on: boolean): void;
}

export function nativeKernel<F>(name: string): NativeKernel<F> {
  let fn: F | null | undefined;
  return {
    get(): F | null {
      if (fn === undefined) {
        const f = nativeAddonExports()?.[name];
        fn = typeof f === 'function' && process.env.WEFT_NATIVE_TEXT !== '0' ? (f as F) : null;
      }
      return fn;
    },
    use(on: boolean): void {
      fn = on ? undefined : null;
    },
  };
}
