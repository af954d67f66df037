// Pure changes to a draft definition: each returns a new definition and never mutates its input,
// so that undo/redo can keep the old ones as they were.

import type { Definition, Json, JsonObject, WorkflowNode } from "../types";

export function emptyDefinition(): Definition {
  return { schemaVersion: 1, name: "New workflow", timeoutS: 300, nodes: [] };
}

/** The node's `next` as a map from outcome to target (a plain string is the first outcome). */
export function nextMap(node: WorkflowNode, outcomes: string[]): Record<string, string> {
  const next = node.next;
  if (typeof next === "string") return outcomes.length ? { [outcomes[0]]: next } : {};
  if (next && typeof next === "object" && !Array.isArray(next)) {
    const found: Record<string, string> = {};
    for (const [outcome, target] of Object.entries(next)) if (typeof target === "string") found[outcome] = target;
    return found;
  }
  return {};
}

/** `next` written back in its shortest form: a string when only the first outcome is set. */
function writeNext(node: WorkflowNode, map: Record<string, string>, outcomes: string[]): WorkflowNode {
  const copy = { ...node };
  const keys = Object.keys(map);
  if (keys.length === 0) delete copy.next;
  else if (keys.length === 1 && keys[0] === outcomes[0]) copy.next = map[keys[0]];
  else copy.next = map;
  return copy;
}

export function nodeById(definition: Definition, id: string): WorkflowNode | undefined {
  return definition.nodes.find((node) => node.id === id);
}

export function updateNode(definition: Definition, id: string, change: (node: WorkflowNode) => WorkflowNode): Definition {
  return { ...definition, nodes: definition.nodes.map((node) => (node.id === id ? change(node) : node)) };
}

export function setNext(
  definition: Definition,
  id: string,
  outcome: string,
  target: string | undefined,
  outcomes: string[],
): Definition {
  return updateNode(definition, id, (node) => {
    const map = { ...nextMap(node, outcomes) };
    if (target) map[outcome] = target;
    else delete map[outcome];
    return writeNext(node, map, outcomes);
  });
}

/** A free id for a new node of `kind`: `tap`, `tap_2`, … (from the kind's last part). */
export function freeId(definition: Definition, kind: string): string {
  const last = kind.split(".").pop() || "step";
  const base = last.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase().replace(/[^a-z0-9_]/g, "_");
  const taken = new Set(definition.nodes.map((node) => node.id));
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) if (!taken.has(`${base}_${n}`)) return `${base}_${n}`;
}

/**
 * A new node of `kind`. When `after` names a node, the new one is linked from that node's first
 * outcome (and takes over where that outcome led); the first node of a draft becomes its start.
 */
export function addNode(
  definition: Definition,
  kind: string,
  outcomesOf: (kind: string) => string[],
  after?: string,
): { definition: Definition; id: string } {
  const id = freeId(definition, kind);
  let node: WorkflowNode = { id, kind, params: {} };
  let result: Definition = { ...definition, nodes: [...definition.nodes, node] };
  const source = after ? nodeById(definition, after) : undefined;
  if (source) {
    const sourceOutcomes = outcomesOf(source.kind);
    const outcome = sourceOutcomes[0];
    if (outcome) {
      const before = nextMap(source, sourceOutcomes)[outcome];
      const ownOutcomes = outcomesOf(kind);
      if (before && ownOutcomes.length) {
        node = writeNext(node, { [ownOutcomes[0]]: before }, ownOutcomes);
        result = updateNode(result, id, () => node);
      }
      result = setNext(result, source.id, outcome, id, sourceOutcomes);
    }
  }
  if (definition.nodes.length === 0 || typeof definition.start !== "string" || !definition.start) {
    result = { ...result, start: id };
  }
  return { definition: result, id };
}

/** Remove a node and every edge into it; `start` moves to the first node left. */
export function removeNode(definition: Definition, id: string, outcomesOf: (kind: string) => string[]): Definition {
  const nodes = definition.nodes
    .filter((node) => node.id !== id)
    .map((node) => {
      const outcomes = outcomesOf(node.kind);
      const map = nextMap(node, outcomes);
      const kept = Object.fromEntries(Object.entries(map).filter(([, target]) => target !== id));
      return Object.keys(kept).length === Object.keys(map).length ? node : writeNext(node, kept, outcomes);
    });
  const result: Definition = { ...definition, nodes };
  if (definition.start === id) {
    if (nodes.length) result.start = nodes[0].id;
    else delete result.start;
  }
  return result;
}

/** Give a node a new id; `start` and every `next` that named it follow. */
export function renameNode(definition: Definition, from: string, to: string, outcomesOf: (kind: string) => string[]): Definition {
  const nodes = definition.nodes.map((node) => {
    const outcomes = outcomesOf(node.kind);
    const map = nextMap(node, outcomes);
    const renamed = Object.fromEntries(Object.entries(map).map(([o, t]) => [o, t === from ? to : t]));
    let copy = Object.values(map).includes(from) ? writeNext(node, renamed, outcomes) : node;
    if (copy.id === from) copy = { ...copy, id: to };
    return copy;
  });
  return { ...definition, nodes, ...(definition.start === from ? { start: to } : {}) };
}

/** `object` with `key` set to `value`, or without `key` when `value` is undefined. */
export function withField<T extends { [key: string]: unknown }>(object: T, key: string, value: Json | undefined): T {
  const copy: { [key: string]: unknown } = { ...object };
  if (value === undefined) delete copy[key];
  else copy[key] = value;
  return copy as T;
}

/** True for a JSON object (not an array, not null). */
export function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Why `value` cannot be drawn as a graph (the JSON tab refuses it), or null when it can. */
export function shapeProblem(value: unknown): string | null {
  if (!isObject(value)) return "the definition must be a JSON object";
  if (!Array.isArray(value.nodes)) return "`nodes` must be a list for the graph to show it";
  const bad = value.nodes.findIndex((node) => !isObject(node));
  if (bad >= 0) return `nodes[${bad}] must be an object`;
  return null;
}

/** The node's id as text (a draft may hold any JSON there). */
export function idOf(node: WorkflowNode): string {
  return typeof node.id === "string" ? node.id : JSON.stringify(node.id ?? null);
}
