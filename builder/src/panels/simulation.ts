// The Simulate panel's model: what it sends to POST /api/v1/simulate and reads back
// (docs/http-api.md, "Simulating a draft"), with the pure helpers the panel uses.

import type { Definition, Json, JsonObject } from "../types";

export type ApprovalChoice = "approve" | "reject" | "timeout";

export interface ApprovalAnswer {
  choice: ApprovalChoice;
  note: string;
}

export interface Bounds {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

export interface StepScreens {
  before: string | null;
  after: string | null;
  actedOn: { screen: string; bounds: Bounds } | null;
}

export interface SimTraceEvent {
  seq: number;
  nodeId: string;
  kind: string;
  outcome: "ok" | "skipped" | "failed";
  message: string | null;
  attempts: number;
  durationMs: number;
  output: JsonObject;
  screens?: StepScreens;
}

export interface ScreenPicture {
  uri: string;
  width: number;
  height: number;
  bytes: number;
}

export interface SimulationResult {
  status: string;
  trace: SimTraceEvent[];
  errorMessage: string | null;
  durationMs: number;
  httpSimulated: boolean;
  warnings: { pointer: string; message: string; hint: string }[];
  screenSize: { width: number; height: number } | null;
  images: Record<string, ScreenPicture>;
  imagesTruncated: boolean;
}

/** The ids of the draft's approval steps, in the order they are written. */
export function approvalNodes(definition: Definition): string[] {
  return definition.nodes.filter((node) => node.kind === "control.approval").map((node) => node.id);
}

/** The `scenario` body field: each approval answered as the panel's form says. */
export function scenarioOf(answers: Record<string, ApprovalAnswer>, nodes: string[]): JsonObject {
  const approvals: JsonObject = {};
  for (const id of nodes) {
    const answer = answers[id] ?? { choice: "approve", note: "" };
    if (answer.choice === "approve") approvals[id] = { decision: "approved" };
    else if (answer.choice === "reject") {
      approvals[id] = answer.note.trim() ? { decision: "rejected", note: answer.note.trim() } : { decision: "rejected" };
    } else approvals[id] = { decision: "timeout" };
  }
  return { approvals };
}

/** The inputs schema's fields (name → schema) and which are required, or null when it declares none. */
export function inputFields(definition: Definition): { fields: [string, JsonObject][]; required: string[] } | null {
  const inputs = definition.inputs;
  if (!inputs || typeof inputs !== "object" || Array.isArray(inputs)) return null;
  const properties = (inputs as JsonObject).properties;
  if (!properties || typeof properties !== "object" || Array.isArray(properties)) return null;
  const fields = Object.entries(properties as JsonObject).filter(
    (entry): entry is [string, JsonObject] => !!entry[1] && typeof entry[1] === "object" && !Array.isArray(entry[1]),
  );
  if (!fields.length) return null;
  const required = (inputs as JsonObject).required;
  return { fields, required: Array.isArray(required) ? required.filter((r): r is string => typeof r === "string") : [] };
}

/** The inputs to send: the values typed, and each field's default where nothing was typed. */
export function inputsToSend(definition: Definition, values: JsonObject): JsonObject {
  const shape = inputFields(definition);
  const out: JsonObject = {};
  for (const [name, schema] of shape?.fields ?? []) {
    const value: Json | undefined = values[name] !== undefined ? values[name] : schema.default;
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** The step to show first: the failing one, or the first. */
export function firstStepToShow(result: SimulationResult): number {
  const failing = result.trace.findIndex((event) => event.outcome === "failed");
  return failing >= 0 ? failing : 0;
}

/** Bounds as percentages of the phone's screen, for an outline laid over a picture of any size. */
export function outlineStyle(bounds: Bounds, size: { width: number; height: number }): Record<string, string> {
  const pct = (value: number, of: number) => `${((value / of) * 100).toFixed(3)}%`;
  return {
    left: pct(bounds.left, size.width),
    top: pct(bounds.top, size.height),
    width: pct(bounds.right - bounds.left, size.width),
    height: pct(bounds.bottom - bounds.top, size.height),
  };
}
