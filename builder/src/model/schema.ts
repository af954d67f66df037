// What the builder reads from the workflow JSON Schema (/api/v1/schemas/workflow.json): the node
// kinds with their one-line help, each kind's params schema and outcomes, and the common fields.
// The forms are generated from these schemas, so a new param in the schema shows up by itself.

import type { Json, JsonObject } from "../types";

export type FieldSchema = JsonObject;

export interface KindInfo {
  kind: string;
  /** The one-line help (the params schema's description). */
  help: string;
  params: FieldSchema;
  /** Outcomes in order; the first is the one a plain-string `next` means. Empty: no way onward. */
  outcomes: string[];
  paramsRequired: boolean;
}

export interface WorkflowSchema {
  root: JsonObject;
  kinds: KindInfo[];
  byKind: Map<string, KindInfo>;
  /** Per-node fields besides id/kind/params/next/ui (label, retry, timeoutMs, optional, enabled). */
  nodeFields: [string, FieldSchema][];
  /** Top-level fields of the definition. */
  topFields: Record<string, FieldSchema>;
  nodeIdPattern: RegExp;
}

function asObject(value: Json | undefined): JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
}

/** `schema` with a `$ref` into `$defs` replaced by its target (the reference's siblings win). */
export function resolve(root: JsonObject, schema: FieldSchema): FieldSchema {
  const ref = schema["$ref"];
  if (typeof ref !== "string" || !ref.startsWith("#/$defs/")) return schema;
  const target = asObject(asObject(root["$defs"])[ref.slice("#/$defs/".length)]);
  const rest = { ...schema };
  delete rest["$ref"];
  return { ...resolve(root, target), ...rest };
}

export function readSchema(root: JsonObject): WorkflowSchema {
  const defs = asObject(root["$defs"]);
  const node = asObject(defs["node"]);
  const nodeProps = asObject(node["properties"]);
  const kindNames = (asObject(nodeProps["kind"])["enum"] as string[] | undefined) ?? [];
  const branches = new Map<string, JsonObject>();
  for (const branch of (node["allOf"] as JsonObject[] | undefined) ?? []) {
    const kind = asObject(asObject(asObject(branch["if"])["properties"])["kind"])["const"];
    if (typeof kind === "string") branches.set(kind, asObject(branch["then"]));
  }
  const kinds = kindNames.map((kind): KindInfo => {
    const then = branches.get(kind) ?? {};
    const thenProps = asObject(then["properties"]);
    const params = resolve(root, asObject(thenProps["params"]));
    const next = resolve(root, asObject(thenProps["next"]));
    const names = asObject(next["propertyNames"])["enum"];
    return {
      kind,
      help: typeof params["description"] === "string" ? params["description"] : "",
      params,
      outcomes: Array.isArray(names) ? (names as string[]) : [],
      paramsRequired: ((then["required"] as string[] | undefined) ?? []).includes("params"),
    };
  });
  const skip = new Set(["id", "kind", "params", "next", "ui"]);
  const nodeFields = Object.entries(nodeProps)
    .filter(([name]) => !skip.has(name))
    .map(([name, schema]): [string, FieldSchema] => [name, resolve(root, asObject(schema))]);
  const topFields: Record<string, FieldSchema> = {};
  for (const [name, schema] of Object.entries(asObject(root["properties"]))) {
    topFields[name] = resolve(root, asObject(schema));
  }
  const idPattern = asObject(defs["nodeId"])["pattern"];
  return {
    root,
    kinds,
    byKind: new Map(kinds.map((k) => [k.kind, k])),
    nodeFields,
    topFields,
    nodeIdPattern: new RegExp(typeof idPattern === "string" ? idPattern : "^[A-Za-z_][A-Za-z0-9_-]{0,63}$"),
  };
}

/** Outcomes of a kind (`ok`, `failed` for an unknown kind, so that its edges still draw). */
export function outcomesOf(schema: WorkflowSchema, kind: string): string[] {
  return schema.byKind.get(kind)?.outcomes ?? ["ok", "failed"];
}
