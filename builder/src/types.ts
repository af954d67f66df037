// Shapes the builder shares with the server (see docs/workflow-format.md and docs/http-api.md).

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** A node as the builder reads it: whatever the JSON holds, with the fields it knows typed loosely. */
export interface WorkflowNode {
  id: string;
  kind: string;
  label?: string;
  params?: JsonObject;
  next?: string | Record<string, string>;
  retry?: JsonObject;
  timeoutMs?: number;
  optional?: boolean;
  enabled?: boolean;
  [field: string]: Json | undefined;
}

/** A workflow definition (a draft may be invalid in any field but `nodes`, which is a list of objects). */
export interface Definition {
  schemaVersion?: Json;
  name?: Json;
  start?: Json;
  inputs?: Json;
  nodes: WorkflowNode[];
  [field: string]: Json | WorkflowNode[] | undefined;
}

/** One finding of the validator: a JSON pointer into the definition, what is wrong, what to do. */
export interface Problem {
  pointer: string;
  message: string;
  hint: string;
  severity: "error" | "warning";
}

export interface ValidationReport {
  errors: Omit<Problem, "severity">[];
  warnings: Omit<Problem, "severity">[];
}

export interface VersionRead {
  id: string;
  workflowId: string;
  number: number;
  definition: Definition;
  warnings: JsonObject[];
  createdAt: string;
}

export interface WorkflowDetail {
  id: string;
  name: string;
  publishedVersionId: string | null;
  latestVersionNumber: number;
  latestVersion: VersionRead;
}

/** What the page tells the island (the mount element's data-* attributes). */
export interface MountInfo {
  mode: "new" | "edit" | "view";
  workflowId?: string;
  versionId?: string;
  csrf: string;
}
