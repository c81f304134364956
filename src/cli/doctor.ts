/** `weft doctor`: what Weft found on this machine — the first thing to paste into a bug report. */
import type { Command } from 'commander';
import { getBackend } from '../tensor/backend/index.js';
import { nativeAddonInfo } from '../tensor/backend/native.js';

export interface DoctorReport {
  node: string;
  platform: string;
  backend: string;
  nativeAddon: boolean;
  kernelPath: string;
  threads: number;
  cpuFeatures: string[];
  cpuModel: string;
}

export async function doctorReport(): Promise<DoctorReport> {
  const os = await import('node:os');
  const backend = getBackend();
  const info = nativeAddonInfo();
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    backend: backend.name,
    nativeAddon: info !== null,
    kernelPath: info?.kernelPath ?? 'js (no native addon)',
    threads: info?.threads ?? 1,
    cpuFeatures: info ? Object.entries(info.features).filter(([, on]) => on).map(([name]) => name) : [],
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
  };
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('print Node version, backend, CPU features, kernel path and thread count')
    .option('--json', 'print one JSON object')
    .action(async (opts: { json?: boolean }) => {
      const r = await doctorReport();
      if (opts.json) {
        console.log(JSON.stringify(r));
        return;
      }
      console.log(`weft doctor`);
      console.log(`  node          ${r.node} (${r.platform})`);
      console.log(`  cpu           ${r.cpuModel}`);
      console.log(`  backend       ${r.backend}${r.nativeAddon ? '' : '  (native addon not built: run npm rebuild)'}`);
      console.log(`  kernel path   ${r.kernelPath}`);
      console.log(`  threads       ${r.threads}  (set WEFT_NUM_THREADS to change)`);
      console.log(`  cpu features  ${r.cpuFeatures.join(' ') || '(none detected)'}`);
    });
}
