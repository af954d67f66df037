// Where the validator's problems belong: on which node (by the /nodes/N pointer) and on which field.

import type { Definition, Problem, ValidationReport } from "../types";

const NODE_POINTER = /^\/nodes\/(\d+)(?:\/|$)/;

export function fromReport(report: ValidationReport): Problem[] {
  return [
    ...report.errors.map((p): Problem => ({ ...p, severity: "error" })),
    ...report.warnings.map((p): Problem => ({ ...p, severity: "warning" })),
  ];
}

/** The index of the node a pointer is inside, or -1. */
export function nodeIndexOf(pointer: string): number {
  const match = NODE_POINTER.exec(pointer);
  return match ? Number(match[1]) : -1;
}

/** Problems per node id. */
export function byNode(definition: Definition, problems: Problem[]): Map<string, Problem[]> {
  const found = new Map<string, Problem[]>();
  for (const problem of problems) {
    const node = definition.nodes[nodeIndexOf(problem.pointer)];
    if (!node) continue;
    const list = found.get(node.id) ?? [];
    list.push(problem);
    found.set(node.id, list);
  }
  return found;
}

/** Problems at exactly `pointer` (deep ones too when `deep`). */
export function problemsAt(problems: Problem[], pointer: string, deep = false): Problem[] {
  return problems.filter((p) => p.pointer === pointer || (deep && p.pointer.startsWith(pointer + "/")));
}

/** Escapes one key for a JSON pointer (RFC 6901). */
export function pointerKey(key: string | number): string {
  return String(key).replace(/~/g, "~0").replace(/\//g, "~1");
}
