/**
 * LoRA (Hu et al. 2021) as Hugging Face PEFT implements it: a frozen layer W plus a trainable
 * low-rank update, y = W x + (α/r) · B A dropout(x), with A [r, in] initialised U(±1/√in) (PyTorch's
 * kaiming_uniform(a=√5)) and B [out, r] zero, so training starts from the base model exactly.
 *
 * Wrapped layers keep their base weights under the same names (a LoRA Linear *is* a Linear), so the
 * model's forward code, loaders and the engine are unchanged; adapters sit beside them as
 * `lora_A.<adapter>.weight` / `lora_B.<adapter>.weight`. Adapters are saved in PEFT's layout
 * (adapter_config.json + adapter_model.safetensors, tensors `base_model.model.<path>.lora_A.weight`),
 * so PEFT loads ours and we load PEFT's. Several adapters can live on one base; one is active.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { noGrad } from '../../tensor/autograd.js';
import { add, dropout, linear, matmul, mul } from '../../tensor/index.js';
import { defaultGenerator, type Generator } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import { uniform_ } from '../../nn/init.js';
import { Conv1D, Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { loadSafetensors, saveSafetensors } from '../../io/safetensors.js';
import { describeZodIssues } from '../../io/zod-issues.js';

export const LoraConfigSchema = z
  .object({
    r: z.number().int().positive(),
    loraAlpha: z.number().positive(),
    loraDropout: z.number().min(0).lt(1).default(0),
    /** Module names: a list matches a module whose path equals or ends with `.name`; a string is a full-match regex (PEFT's rule). */
    targetModules: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]),
    /** Scale α/√r instead of α/r (rank-stabilised LoRA). */
    useRslora: z.boolean().default(false),
    /** PEFT's task_type, recorded in adapter_config.json. */
    taskType: z.string().default('CAUSAL_LM'),
    /** Extra modules trained in full and saved with the adapter (e.g. a classification head). */
    modulesToSave: z.array(z.string()).default([]),
  })
  .strict();
export type LoraConfigInput = z.input<typeof LoraConfigSchema>;
export type LoraConfig = z.output<typeof LoraConfigSchema>;

export function parseLoraConfig(input: unknown): LoraConfig {
  const r = LoraConfigSchema.safeParse(input);
  if (!r.success) {
    throw new RangeError(`LoRA config is invalid: ${describeZodIssues(r.error)}`);
  }
  return r.data;
}

/** Does a module path match PEFT's target_modules rule? */
export function matchesTarget(path: string, target: LoraConfig['targetModules']): boolean {
  if (typeof target === 'string') return new RegExp(`^(?:${target})$`).test(path);
  return target.some((t) => path === t || path.endsWith(`.${t}`));
}

interface Adapter {
  A: Linear;
  B: Linear;
  scaling: number;
  dropout: number;
}

/** The adapters of one wrapped layer and the arithmetic they share (Linear and GPT-2's Conv1D). */
class LoraAdapters {
  readonly adapters = new Map<string, Adapter>();
  active: string | null = null;
  /** Adapters currently added into the base weight. */
  readonly merged: string[] = [];
  /** Registered by the layer as `lora_A` / `lora_B` (PEFT's ModuleDicts keyed by adapter name). */
  readonly loraA = new AdapterDict();
  readonly loraB = new AdapterDict();

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    private readonly generator: Generator,
  ) {}

  add(name: string, config: LoraConfig): void {
    if (this.adapters.has(name)) throw new Error(`LoRA: adapter '${name}' already exists on this layer`);
    const A = new Linear(this.inFeatures, config.r, { bias: false, generator: this.generator });
    const B = new Linear(config.r, this.outFeatures, { bias: false, generator: this.generator });
    noGrad(() => {
      const bound = 1 / Math.sqrt(this.inFeatures);
      uniform_(A.weight, -bound, bound, this.generator);
      B.weight.f32('LoRA.init').fill(0);
    });
    this.loraA.set(name, A);
    this.loraB.set(name, B);
    const scaling = config.useRslora ? config.loraAlpha / Math.sqrt(config.r) : config.loraAlpha / config.r;
    this.adapters.set(name, { A, B, scaling, dropout: config.loraDropout });
    this.active ??= name;
  }

  adapter(name: string): Adapter {
    const a = this.adapters.get(name);
    if (a === undefined) throw new Error(`LoRA: no adapter '${name}' (have: ${[...this.adapters.keys()].join(', ') || 'none'})`);
    return a;
  }

  /** scaling · B A x for the active adapter, or null when it is merged, disabled or absent. */
  delta(x: Tensor, training: boolean): Tensor | null {
    if (this.active === null || this.merged.includes(this.active)) return null;
    // A layer the active adapter does not target contributes nothing (PEFT's set_adapter).
    const a = this.adapters.get(this.active);
    if (a === undefined) return null;
    const h = a.dropout > 0 ? dropout(x, a.dropout, { training, generator: this.generator }) : x;
    return mul(a.B.forward(a.A.forward(h)), a.scaling);
  }

  /** scaling · B A as [out, in] (the update a merge adds to a Linear's weight). */
  weightUpdate(name: string): Tensor {
    const a = this.adapter(name);
    return noGrad(() => mul(matmul(a.B.weight, a.A.weight), a.scaling));
  }
}

/** Adapter name → layer, registered under the adapter's name (PEFT's ModuleDict `lora_A.default`). */
class AdapterDict extends Module {
  set(name: string, m: Linear): void {
    this.registerModule(name, m);
  }
}

/** A Linear (sharing its base layer's weight and bias) with LoRA adapters beside it. */
export class LoraLinear extends Linear {
  readonly lora: LoraAdapters;
  /** The base weight is [out, in]: a merge adds B·A as is. */
  readonly transposedWeight = false;

  constructor(base: Linear, generator: Generator = defaultGenerator) {
    super(base.inFeatures, base.outFeatures, { weight: base.weight, adoptedBias: base.bias });
    this.lora = new LoraAdapters(base.inFeatures, base.outFeatures, generator);
    this.registerModule('lora_A', this.lora.loraA);
    this.registerModule('lora_B', this.lora.loraB);
  }

  override forward(x: Tensor): Tensor {
    const y = linear(x, this.weight, this.bias ?? undefined);
    const d = this.lora.delta(x, this.training);
    return d === null ? y : add(y, d);
  }
}

/** GPT-2's Conv1D (weight [in, out]) with LoRA adapters: PEFT's fan_in_fan_out case. */
export class LoraConv1D extends Conv1D {
  readonly lora: LoraAdapters;
  /** The base weight is [in, out]: a merge adds (B·A)ᵀ. */
  readonly transposedWeight = true;

  constructor(base: Conv1D, generator: Generator = defaultGenerator) {
    super(base.inFeatures, base.outFeatures, { weight: base.weight, adoptedBias: base.bias });
    this.lora = new LoraAdapters(base.inFeatures, base.outFeatures, generator);
    this.registerModule('lora_A', this.lora.loraA);
    this.registerModule('lora_B', this.lora.loraB);
  }

  override forward(x: Tensor): Tensor {
    const y = super.forward(x);
    const d = this.lora.delta(x, this.training);
    return d === null ? y : add(y, d);
  }
}

function isWrapped(m: Module): m is LoraLinear | LoraConv1D {
  return m instanceof LoraLinear || m instanceof LoraConv1D;
}

/** The wrapped layers of a model, by path. */
export function loraLayers(model: Module): [string, LoraLinear | LoraConv1D][] {
  return model.namedModules().filter((e): e is [string, LoraLinear | LoraConv1D] => isWrapped(e[1]));
}

export interface InjectLoraOptions {
  adapterName?: string;
  generator?: Generator;
  /** Freeze every base parameter (default true): only adapters and modulesToSave train. */
  freezeBase?: boolean;
}

/**
 * Wraps every Linear/Conv1D whose path matches config.targetModules and adds adapter `name` to it
 * (layers already wrapped get a further adapter). Returns the wrapped paths.
 */
export function injectLora(model: Module, configInput: LoraConfigInput | LoraConfig, options: InjectLoraOptions = {}): string[] {
  const config = parseLoraConfig(configInput);
  const name = options.adapterName ?? 'default';
  const g = options.generator ?? defaultGenerator;
  const paths: string[] = [];
  for (const [path, m] of model.namedModules()) {
    if (path === '' || !matchesTarget(path, config.targetModules)) continue;
    if (path.includes('.lora_A.') || path.includes('.lora_B.')) continue;
    let layer: LoraLinear | LoraConv1D;
    if (isWrapped(m)) layer = m;
    else if (m instanceof Linear) layer = new LoraLinear(m, g);
    else if (m instanceof Conv1D) layer = new LoraConv1D(m, g);
    else continue;
    if (layer !== m) {
      const dot = path.lastIndexOf('.');
      model.getModule(dot < 0 ? '' : path.slice(0, dot)).replaceModule(path.slice(dot + 1), layer);
    }
    layer.lora.add(name, config);
    layer.train(model.training);
    paths.push(path);
  }
  if (paths.length === 0) {
    const linears = model
      .namedModules()
      .filter(([, m]) => m instanceof Linear || m instanceof Conv1D)
      .map(([p]) => p.split('.').pop()!);
    throw new Error(`injectLora: no Linear/Conv1D matches target_modules ${JSON.stringify(config.targetModules)}; layer names here: ${[...new Set(linears)].join(', ')}`);
  }
  if (options.freezeBase !== false) freezeForAdapter(model, config.modulesToSave);
  adapterConfigs.set(model, { ...(adapterConfigs.get(model) ?? {}), [name]: config });
  return paths;
}

/** Only LoRA weights and the modules to save keep requiresGrad. */
function freezeForAdapter(model: Module, modulesToSave: readonly string[]): void {
  for (const [path, p] of model.namedParameters()) {
    const lora = /\.lora_[AB]\./.test(path);
    const saved = modulesToSave.some((m) => path === m || path.startsWith(`${m}.`) || path.includes(`.${m}.`));
    p.requiresGrad = lora || saved;
  }
}

const adapterConfigs = new WeakMap<Module, Record<string, LoraConfig>>();

/** The adapter names injected into `model`, with their configs. */
export function loraAdapters(model: Module): Record<string, LoraConfig> {
  return { ...(adapterConfigs.get(model) ?? {}) };
}

/** Makes `name` the adapter every wrapped layer applies (null disables LoRA: the base model alone). */
export function setActiveAdapter(model: Module, name: string | null): void {
  const layers = loraLayers(model);
  if (name !== null && !layers.some(([, l]) => l.lora.adapters.has(name))) {
    throw new Error(`setActiveAdapter: no adapter '${name}' (have: ${Object.keys(loraAdapters(model)).join(', ') || 'none'})`);
  }
  for (const [, layer] of layers) layer.lora.active = name;
}

/** Adds the adapter's update into the base weights (faster inference; unmerge() undoes it). */
export function mergeAdapter(model: Module, name = 'default'): void {
  noGrad(() => {
    for (const [, layer] of loraLayers(model)) {
      if (layer.lora.merged.includes(name)) continue;
      applyUpdate(layer, name, +1);
      layer.lora.merged.push(name);
    }
  });
}

export function unmergeAdapter(model: Module, name = 'default'): void {
  noGrad(() => {
    for (const [, layer] of loraLayers(model)) {
      const i = layer.lora.merged.indexOf(name);
      if (i < 0) continue;
      applyUpdate(layer, name, -1);
      layer.lora.merged.splice(i, 1);
    }
  });
}

function applyUpdate(layer: LoraLinear | LoraConv1D, name: string, sign: 1 | -1): void {
  const upd = layer.lora.weightUpdate(name);
  const u = (layer.transposedWeight ? upd.transpose(0, 1).contiguous() : upd).dense();
  const w = layer.weight.f32('LoRA.merge');
  for (let i = 0; i < w.length; i++) w[i] = w[i]! + sign * u[i]!;
}

/**
 * Merges adapter `name` and puts plain layers back (PEFT's merge_and_unload): the model is the
 * base architecture again, savable with savePretrained.
 */
export function mergeAndUnload(model: Module, name = 'default'): void {
  mergeAdapter(model, name);
  for (const [path, layer] of loraLayers(model)) {
    const plain =
      layer instanceof LoraConv1D
        ? new Conv1D(layer.inFeatures, layer.outFeatures, { weight: layer.weight, adoptedBias: layer.bias })
        : new Linear(layer.inFeatures, layer.outFeatures, { weight: layer.weight, adoptedBias: layer.bias });
    const dot = path.lastIndexOf('.');
    model.getModule(dot < 0 ? '' : path.slice(0, dot)).replaceModule(path.slice(dot + 1), plain);
  }
  for (const p of model.parameters()) p.requiresGrad = true;
  adapterConfigs.delete(model);
}

/** Trainable and total parameter counts (PEFT's print_trainable_parameters). */
export function trainableParameters(model: Module): { trainable: number; total: number } {
  let trainable = 0;
  let total = 0;
  for (const p of model.parameters()) {
    total += p.numel;
    if (p.requiresGrad) trainable += p.numel;
  }
  return { trainable, total };
}

// -----------------------------------------------------------------------------------------------
// PEFT files
// -----------------------------------------------------------------------------------------------

const ADAPTER_CONFIG = 'adapter_config.json';
const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

function peftConfigJSON(c: LoraConfig, baseModel: string | null, fanInFanOut: boolean): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModel,
    bias: 'none',
    fan_in_fan_out: fanInFanOut,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: c.loraAlpha,
    lora_dropout: c.loraDropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: c.modulesToSave.length > 0 ? c.modulesToSave : null,
    peft_type: 'LORA',
    r: c.r,
    rank_pattern: {},
    revision: null,
    target_modules: c.targetModules,
    task_type: c.taskType,
    use_dora: false,
    use_rslora: c.useRslora,
  };
}

const PeftFileSchema = z
  .object({
    peft_type: z.literal('LORA'),
    r: z.number().int().positive(),
    lora_alpha: z.number().positive(),
    lora_dropout: z.number().min(0).lt(1).default(0),
    target_modules: z.union([z.array(z.string()), z.string()]),
    use_rslora: z.boolean().default(false),
    use_dora: z.boolean().default(false),
    task_type: z.string().nullable().default('CAUSAL_LM'),
    modules_to_save: z.array(z.string()).nullable().default(null),
    rank_pattern: z.record(z.string(), z.unknown()).default({}),
    alpha_pattern: z.record(z.string(), z.unknown()).default({}),
    bias: z.string().default('none'),
  })
  .loose();

/** Reads adapter_config.json and refuses what this implementation would compute differently. */
export function loraConfigFromPeft(json: unknown, source = ADAPTER_CONFIG): LoraConfig {
  const r = PeftFileSchema.safeParse(json);
  if (!r.success) throw new RangeError(`${source} is not a PEFT LoRA config: ${describeZodIssues(r.error, '')}`);
  const p = r.data;
  if (p.use_dora) throw new RangeError(`${source}: DoRA adapters (use_dora: true) are not supported`);
  if (Object.keys(p.rank_pattern).length > 0 || Object.keys(p.alpha_pattern).length > 0) {
    throw new RangeError(`${source}: per-module rank_pattern/alpha_pattern are not supported`);
  }
  if (p.bias !== 'none') throw new RangeError(`${source}: bias '${p.bias}' is not supported (only 'none')`);
  return parseLoraConfig({
    r: p.r,
    loraAlpha: p.lora_alpha,
    loraDropout: p.lora_dropout,
    targetModules: p.target_modules,
    useRslora: p.use_rslora,
    taskType: p.task_type ?? 'CAUSAL_LM',
    modulesToSave: p.modules_to_save ?? [],
  });
}

/** PEFT's tensor name of a model parameter path: adapter name dropped, base_model.model prefixed. */
function peftName(path: string, adapter: string): string | null {
  const m = /^(.*)\.(lora_[AB])\.([^.]+)\.weight$/.exec(path);
  if (m !== null) return m[3] === adapter ? `base_model.model.${m[1]}.${m[2]}.weight` : null;
  return `base_model.model.${path}`;
}

/** Writes adapter `name` (and its modules to save) in PEFT's layout, atomically. */
export async function saveLoraAdapter(model: Module, dir: string, options: { adapterName?: string; baseModel?: string | null } = {}): Promise<{ bytes: number; tensors: number }> {
  const name = options.adapterName ?? 'default';
  const config = loraAdapters(model)[name];
  if (config === undefined) throw new Error(`saveLoraAdapter: the model has no adapter '${name}'`);
  const tensors = new Map<string, Tensor>();
  for (const [path, p] of model.namedParameters()) {
    const isLora = /\.lora_[AB]\./.test(path);
    const saved = config.modulesToSave.some((m) => path === m || path.startsWith(`${m}.`) || path.includes(`.${m}.`));
    if (!isLora && !saved) continue;
    const key = peftName(path, name);
    if (key !== null) tensors.set(key, p);
  }
  await mkdir(dir, { recursive: true });
  const file = join(dir, ADAPTER_WEIGHTS);
  await saveSafetensors(file, new Map([...tensors].sort(([a], [b]) => (a < b ? -1 : 1))), { format: 'pt' });
  await writeFileAtomic(join(dir, ADAPTER_CONFIG), JSON.stringify(peftConfigJSON(config, options.baseModel ?? null, loraLayers(model).some(([, l]) => l.transposedWeight)), null, 2) + '\n');
  let bytes = 0;
  for (const t of tensors.values()) bytes += t.numel * 4;
  return { bytes, tensors: tensors.size };
}

/**
 * Loads a PEFT LoRA adapter directory onto `model` as adapter `name` (injecting the layers it
 * targets), checking that every tensor in the file lands on a layer and has the right shape.
 */
export async function loadLoraAdapter(model: Module, dir: string, options: { adapterName?: string } = {}): Promise<LoraConfig> {
  const name = options.adapterName ?? 'default';
  let json: unknown;
  try {
    json = JSON.parse(await readFile(join(dir, ADAPTER_CONFIG), 'utf8'));
  } catch (e) {
    throw new Error(`loadLoraAdapter: cannot read ${join(dir, ADAPTER_CONFIG)}: ${(e as Error).message}`);
  }
  const config = loraConfigFromPeft(json, join(dir, ADAPTER_CONFIG));
  const file = await loadSafetensors(join(dir, ADAPTER_WEIGHTS));
  injectLora(model, config, { adapterName: name });
  const own = new Map(model.namedParameters());
  const problems: string[] = [];
  const assignments: [Tensor, Tensor][] = [];
  for (const [key, t] of file.tensors) {
    const m = /^base_model\.model\.(.*?)(?:\.(lora_[AB]))?\.weight$/.exec(key);
    const path = m === null ? null : m[2] !== undefined ? `${m[1]}.${m[2]}.${name}.weight` : key.replace(/^base_model\.model\./, '');
    const target = path === null ? undefined : own.get(path);
    if (target === undefined) {
      problems.push(`${key} has no matching parameter`);
      continue;
    }
    if (target.shape.length !== t.shape.length || target.shape.some((d, i) => d !== t.shape[i])) {
      problems.push(`${key} is [${t.shape.join(', ')}], the model expects [${target.shape.join(', ')}]`);
      continue;
    }
    assignments.push([target, t]);
  }
  if (problems.length > 0) throw new Error(`loadLoraAdapter: ${join(dir, ADAPTER_WEIGHTS)} does not fit this model: ${problems.slice(0, 8).join('; ')}`);
  noGrad(() => {
    for (const [target, t] of assignments) target.f32('loadLoraAdapter').set(t.to('f32').dense());
  });
  return config;
}
