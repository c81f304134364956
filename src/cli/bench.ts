/**
 * `weft bench gemm | matvec | ops | attention`: our kernels against NumPy/OpenBLAS (or memcpy) in the same run.
 * `--json` prints one JSON object per line; otherwise a table with ours, theirs and the ratio.
 */
import type { Command } from 'commander';
import { getBackend } from '../tensor/backend/index.js';
import { nativeAddonInfo, setNativeThreads } from '../tensor/backend/native.js';
import { benchGemm, benchMatvec, LLM_SHAPES, parseShape, type GemmShape } from '../bench/gemm.js';
import { benchOps } from '../bench/ops.js';
import { benchTokenizers } from '../bench/tokenizers.js';
import { ATTENTION_SHAPES, benchAttention, parseAttentionShape } from '../bench/attention.js';
import { benchMetrics, metricBenchLines } from '../bench/metrics.js';
import { registerTokenizersTrainBench } from '../bench/tokenizers-train.js';
import { registerDataBench } from '../bench/data.js';
import { registerGenerateBench } from '../bench/generate.js';
import { registerQuantBench } from '../bench/quant.js';
import { registerServeBench } from '../bench/serve.js';
import { registerMoEBench } from '../bench/moe.js';
import { registerEngineBench } from '../bench/engine.js';
import { registerSpeculativeBench } from '../bench/speculative.js';
import { registerStructuredBench } from '../infer/structured/bench.js';
import { registerRagBench } from '../bench/rag.js';
import { registerFinetuneBench } from '../bench/finetune.js';

interface CommonOptions {
  json?: boolean;
  threads?: string;
  numpy: boolean;
  rounds: string;
}

function positiveInt(text: string, what: string): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1) throw new Error(`bench: ${what} must be a positive integer, got '${text}'`);
  return v;
}

/** Applies --threads to the native pool; returns the thread count both sides use. */
function useThreads(opt: string | undefined): number {
  if (opt !== undefined) {
    const n = positiveInt(opt, '--threads');
    setNativeThreads(n);
    return n;
  }
  return nativeAddonInfo()?.threads ?? 1;
}

function fmt(x: number | null, width: number, digits = 1): string {
  return (x === null ? '-' : x.toFixed(digits)).padStart(width);
}

function addCommon(cmd: Command): Command {
  return cmd
    .option('--json', 'one JSON object per line')
    .option('--threads <n>', 'threads for weft and NumPy (default: the pool size)')
    .option('--no-numpy', 'skip the NumPy anchor')
    .option('--rounds <n>', 'alternations of ours and NumPy per shape (best of each)', '3');
}

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('benchmarks against NumPy/OpenBLAS, run side by side');

  addCommon(
    bench
      .command('gemm')
      .description('f32 GEMM GFLOP/s, ours and NumPy on the same shapes')
      .option('--sizes <list>', 'square sizes, comma-separated (e.g. 256,512,1024,2048)')
      .option('--shape <MxNxK...>', "explicit shapes (append ':t' for B stored n×k, the Linear layout)")
      .option('--llm', 'also the LLM training shapes (default when no --sizes/--shape)')
      .option('--trans-b', 'square sizes with B transposed (Linear layout)'),
  ).action((opts: CommonOptions & { sizes?: string; shape?: string[]; llm?: boolean; transB?: boolean }) => {
    const threads = useThreads(opts.threads);
    const shapes: GemmShape[] = [];
    const explicit = opts.sizes !== undefined || opts.shape !== undefined;
    const sizes = opts.sizes ?? (explicit ? '' : '256,512,1024,2048');
    for (const s of sizes.split(',').filter((x) => x.trim() !== '')) {
      const n = positiveInt(s.trim(), '--sizes entry');
      shapes.push({ m: n, n, k: n, transB: opts.transB ?? false });
    }
    for (const s of opts.shape ?? []) shapes.push(parseShape(s));
    if (opts.llm || !explicit) shapes.push(...LLM_SHAPES);
    const records = benchGemm(shapes, {
      backend: getBackend(),
      threads,
      numpy: opts.numpy,
      rounds: positiveInt(opts.rounds, '--rounds'),
    });
    if (opts.json) {
      for (const r of records) console.log(JSON.stringify(r));
      return;
    }
    const r0 = records[0];
    console.log(`gemm f32 — backend ${r0.backend}, kernel ${r0.kernel}, ${threads} thread(s); anchor: ${r0.anchor}`);
    console.log('      m      n      k  B    weft GFLOP/s  numpy GFLOP/s   ratio');
    for (const r of records) {
      console.log(
        `${String(r.m).padStart(7)}${String(r.n).padStart(7)}${String(r.k).padStart(7)}  ${r.transB ? 'nk' : 'kn'}` +
          `${fmt(r.gflops, 16)}${fmt(r.numpy_gflops, 15)}${fmt(r.ratio, 8, 3)}`,
      );
    }
  });

  addCommon(
    bench
      .command('matvec')
      .description('y = W x (m = 1): effective memory bandwidth, ours and NumPy')
      .option('--n <n>', 'rows of W', '4096')
      .option('--k <k>', 'columns of W', '4096'),
  ).action((opts: CommonOptions & { n: string; k: string }) => {
    const threads = useThreads(opts.threads);
    const n = positiveInt(opts.n, '--n');
    const k = positiveInt(opts.k, '--k');
    const records = benchMatvec(n, k, {
      backend: getBackend(),
      threads,
      numpy: opts.numpy,
      rounds: positiveInt(opts.rounds, '--rounds'),
    });
    if (opts.json) {
      for (const r of records) console.log(JSON.stringify(r));
      return;
    }
    const r0 = records[0];
    console.log(`matvec f32 — backend ${r0.backend}, kernel ${r0.kernel}, ${threads} thread(s); anchor: ${r0.anchor}`);
    console.log('      n      k  W layout      weft GB/s  numpy GB/s   ratio');
    for (const r of records) {
      console.log(
        `${String(r.n).padStart(7)}${String(r.k).padStart(7)}  ${r.transB ? 'n×k (Linear)' : 'k×n         '}` +
          `${fmt(r.gbps, 13)}${fmt(r.numpy_gbps, 12)}${fmt(r.ratio, 8, 3)}`,
      );
    }
  });

  addCommon(
    bench
      .command('ops')
      .description('softmax, layerNorm, add, gelu: GB/s against memcpy of the same size')
      .option('--elements <n>', 'elements per tensor', String(16 * 1024 * 1024))
      .option('--cols <n>', 'row length for softmax and layerNorm', '1024'),
  ).action((opts: CommonOptions & { elements: string; cols: string }) => {
    const threads = useThreads(opts.threads);
    const records = benchOps({
      backend: getBackend(),
      threads,
      elements: positiveInt(opts.elements, '--elements'),
      cols: positiveInt(opts.cols, '--cols'),
      numpy: opts.numpy,
    });
    if (opts.json) {
      for (const r of records) console.log(JSON.stringify(r));
      return;
    }
    const r0 = records[0];
    console.log(
      `ops f32 on ${r0.elements} elements — backend ${r0.backend}, ${threads} thread(s); ` +
        `anchor: ${r0.anchor} at ${r0.memcpy_gbps.toFixed(1)} GB/s`,
    );
    console.log('  op           weft GB/s  memcpy GB/s   ratio');
    for (const r of records) {
      console.log(`  ${r.op.padEnd(10)}${fmt(r.gbps, 12)}${fmt(r.memcpy_gbps, 13)}${fmt(r.ratio, 8, 3)}`);
    }
  });

  bench
    .command('attention')
    .description('fused attention fwd + bwd against PyTorch\'s explicit path, same shapes and threads')
    .option('--json', 'one JSON object per line')
    .option('--threads <n>', 'threads for weft and torch (default: the pool size)')
    .option('--no-torch', 'skip the PyTorch anchor')
    .option('--shape <B,H,T,D[:c]...>', "shapes (':c' = causal); default: the GPT quickstart layer and longer sequences")
    .action((opts: { json?: boolean; threads?: string; torch: boolean; shape?: string[] }) => {
      const threads = useThreads(opts.threads);
      const shapes = opts.shape?.map(parseAttentionShape) ?? ATTENTION_SHAPES;
      const records = benchAttention(shapes, { backend: getBackend(), threads, torch: opts.torch });
      if (opts.json) {
        for (const r of records) console.log(JSON.stringify(r));
        return;
      }
      console.log(`attention f32 — backend ${records[0].backend}, ${threads} thread(s); anchor: ${records[0].anchor}`);
      console.log('  shape (B,H,T,D)     fwd ms   bwd ms  GFLOP/s  torch fwd  torch bwd   ratio');
      for (const r of records) {
        console.log(
          `  ${r.shape.padEnd(16)}${fmt(r.fwd_ms, 9, 3)}${fmt(r.bwd_ms, 9, 3)}${fmt(r.gflops, 9)}` +
            `${fmt(r.torch_fwd_ms, 11, 3)}${fmt(r.torch_bwd_ms, 11, 3)}${fmt(r.ratio, 8, 3)}`,
        );
      }
    });
  bench
    .command('tokenizers')
    .description('GPT-2 encode MB/s on TinyShakespeare (and the Chinese corpus): ours vs js-tiktoken and tiktoken (WASM)')
    .option('--json', 'one JSON object per line')
    .option('--gpt2 <dir>', 'directory with the GPT-2 tokenizer files (default ../shared/data/gpt2)')
    .option('--file <path...>', 'corpora to encode instead of the defaults')
    .option('--seconds <s>', 'seconds of repetitions per measurement (best time kept)', '1')
    .action(async (opts: { json?: boolean; gpt2?: string; file?: string[]; seconds: string }) => {
      const seconds = Number(opts.seconds);
      if (!(seconds > 0)) throw new Error(`bench: --seconds must be a positive number, got '${opts.seconds}'`);
      const records = await benchTokenizers({ gpt2Dir: opts.gpt2, files: opts.file, minSeconds: seconds });
      if (opts.json) {
        for (const r of records) console.log(JSON.stringify(r));
        return;
      }
      console.log('tokenizers — GPT-2 encode, MB/s of UTF-8 input (ratio = ours / anchor; ours cold = word cache cleared each run)');
      console.log('  corpus                    MB  ours cold  ours warm  js-tiktoken  ratio  tiktoken-wasm  ratio  same ids');
      for (const r of records) {
        const same = [r.ids_equal_js_tiktoken, r.ids_equal_tiktoken_wasm].every((x) => x !== false) ? 'yes' : 'NO';
        console.log(
          `  ${r.corpus.padEnd(22)}${fmt(r.bytes / 1e6, 6, 2)}${fmt(r.weft_mbps, 11)}${fmt(r.weft_warm_mbps, 11)}` +
            `${fmt(r.js_tiktoken_mbps, 13)}${fmt(r.ratio_js_tiktoken, 7, 2)}${fmt(r.tiktoken_wasm_mbps, 15)}${fmt(r.ratio_tiktoken_wasm, 7, 2)}  ${same}`,
        );
        for (const n of r.notes) console.log(`    note: ${n}`);
      }
    });

  bench
    .command('metrics')
    .description('metric throughput (corpus BLEU/chrF, ROUGE, CIDEr-D) vs sacrebleu on the same corpus')
    .option('--pairs <n>', 'sentence pairs', '10000')
    .option('--no-anchor', 'skip the sacrebleu anchor')
    .option('--json', 'one JSON object per line')
    .action((opts: { pairs: string; anchor: boolean; json?: boolean }) => {
      for (const line of metricBenchLines(benchMetrics({ pairs: positiveInt(opts.pairs, '--pairs'), anchor: opts.anchor }), opts.json)) {
        console.log(line);
      }
    });

  registerTokenizersTrainBench(bench);
  registerDataBench(bench);
  registerGenerateBench(bench);
  registerQuantBench(bench);
  registerServeBench(bench);
  registerMoEBench(bench);
  registerEngineBench(bench);
  registerSpeculativeBench(bench);
  registerStructuredBench(bench);
  registerRagBench(bench);
  registerFinetuneBench(bench);
}
