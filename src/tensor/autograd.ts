/**
 * Reverse-mode autograd on a tape. Each op that may need a gradient calls `record`, which attaches a
 * GradNode (the op's backward closure and its inputs) to the output. `backward()` walks the graph in
 * reverse topological order, accumulates gradients, and then frees the graph (PyTorch semantics:
 * a second backward through the same graph needs `retainGraph`).
 */
import type { Tensor } from './tensor.js';
import { formatShape, shapesEqual } from './shape.js';

export interface GradNode {
  readonly name: string;
  readonly inputs: readonly Tensor[];
  /** Gradients for each input (null where the input needs none). Runs with grad recording off. */
  readonly backward: (gradOutput: Tensor) => readonly (Tensor | null)[];
  /** Tensors whose memory the node keeps alive until the graph is freed (inputs and saved outputs). */
  readonly retained: readonly Tensor[];
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording gradients (inference, optimizer steps). Synchronous code only. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Runs `fn` with recording forced on (inside a noGrad region). */
export function enableGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function needsGrad(...inputs: readonly (Tensor | null | undefined)[]): boolean {
  return gradEnabled && inputs.some((t) => t != null && t.requiresGrad);
}

/**
 * Attaches a backward to `out` if any input requires grad (and recording is on). `saved` lists
 * extra tensors the backward reads (typically the output itself) so their memory stays valid even
 * if the caller disposes them before backward.
 */
export function record(
  out: Tensor,
  name: string,
  inputs: readonly Tensor[],
  backward: (gradOutput: Tensor) => readonly (Tensor | null)[],
  saved: readonly Tensor[] = [],
): Tensor {
  if (!needsGrad(...inputs)) return out;
  const retained = [...inputs, ...saved];
  for (const t of retained) t.storage.retain();
  out.requiresGrad = true;
  out.gradFn = { name, inputs, backward, retained };
  return out;
}

function releaseNode(node: GradNode): void {
  for (const t of node.retained) t.storage.release();
}

/** Topological order (inputs before outputs) of the tensors reachable from root through gradFns. */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  // Iterative DFS: graphs of deep models overflow the JS stack with recursion.
  const stack: { t: Tensor; next: number }[] = [{ t: root, next: 0 }];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const inputs = top.t.gradFn?.inputs ?? [];
    if (top.next < inputs.length) {
      const child = inputs[top.next++]!;
      if (!visited.has(child) && child.requiresGrad) {
        visited.add(child);
        stack.push({ t: child, next: 0 });
      }
    } else {
      order.push(top.t);
      stack.pop();
    }
  }
  return order;
}

export interface BackwardOptions {
  retainGraph?: boolean;
}

/**
 * Accumulates d(root)/d(leaf) into every leaf's `.grad`. `grad` defaults to 1 for a scalar root.
 * The Tensor class calls this from `tensor.backward()`.
 */
export function runBackward(
  root: Tensor,
  grad: Tensor,
  ops: {
    /** Returns target + g, reusing target's memory when it is dense and not shared. */
    accumulate: (target: Tensor, g: Tensor) => Tensor;
    /** A new tensor object sharing t's memory (its own reference). */
    viewOf: (t: Tensor) => Tensor;
    /** t itself when its memory is dense and used by no one else, else a dense copy. */
    exclusive: (t: Tensor) => Tensor;
  },
  options: BackwardOptions = {},
): void {
  if (!root.requiresGrad) {
    throw new Error("backward: the tensor does not require grad (no input had requiresGrad, or it was made under noGrad)");
  }
  const order = topoOrder(root);
  const grads = new Map<Tensor, Tensor>();
  grads.set(root, ops.viewOf(grad));
  const owned = new Set<Tensor>();
  const put = (t: Tensor, g: Tensor, from: string): void => {
    if (!shapesEqual(g.shape, t.shape)) {
      throw new Error(`backward of ${from}: gradient shape ${formatShape(g.shape)} != input shape ${formatShape(t.shape)}`);
    }
    const prev = grads.get(t);
    if (prev === undefined) {
      // Each map entry owns its own reference, even when a backward returns the same tensor twice.
      const entry = owned.has(g) ? ops.viewOf(g) : g;
      owned.add(entry);
      grads.set(t, entry);
    } else {
      const sum = ops.accumulate(prev, g);
      if (sum !== prev) {
        owned.delete(prev);
        prev.dispose();
        owned.add(sum);
        grads.set(t, sum);
      }
    }
  };
  owned.add(grads.get(root)!);

  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i]!;
    const g = grads.get(t);
    if (g === undefined) continue;
    const node = t.gradFn;
    if (node === null) {
      // A leaf: accumulate into .grad (the graph's gradient becomes the leaf's, no copy).
      if (t.grad === null) {
        const own = ops.exclusive(g);
        if (own !== g) g.dispose();
        t.grad = own;
      } else {
        t.grad = ops.accumulate(t.grad, g);
        g.dispose();
      }
      grads.delete(t);
      continue;
    }
    const inputGrads = node.backward(g);
    if (inputGrads.length !== node.inputs.length) {
      throw new Error(`backward of ${node.name}: returned ${inputGrads.length} gradients for ${node.inputs.length} inputs`);
    }
    for (let j = 0; j < node.inputs.length; j++) {
      const input = node.inputs[j]!;
      const ig = inputGrads[j];
      if (ig == null || !input.requiresGrad) continue;
      put(input, ig, node.name);
    }
    // Temporaries that were summed into an existing gradient (not adopted as one) are done with.
    for (const ig of new Set(inputGrads)) if (ig != null && ig !== g && !owned.has(ig)) ig.dispose();
    grads.delete(t);
    g.dispose();
    if (!options.retainGraph) {
      releaseNode(node);
      t.gradFn = freedNode(node.name);
    }
  }
}

/** Stands in for a node whose graph was freed, so a second backward fails loudly, as in PyTorch. */
function freedNode(name: string): GradNode {
  return {
    name,
    inputs: [],
    retained: [],
    backward: () => {
      throw new Error(
        `backward: trying to go through the graph of ${name} a second time; its buffers were freed. ` +
          'Pass { retainGraph: true } to the first backward if you need to.',
      );
    },
  };
}
