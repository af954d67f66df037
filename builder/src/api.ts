// The builder's client of the public API (/api/v1): the same calls any script makes.
// On a dashboard page it authenticates with the session cookie plus the page's CSRF token;
// panels reuse `api` (or `request` for calls not wrapped here).

import type { Definition, JsonObject, ValidationReport, VersionRead, WorkflowDetail } from "./types";

/** An answer that was not 2xx, with the problem+json body's words and validation problems. */
export class ApiError extends Error {
  readonly status: number;
  readonly problems: { pointer: string; message: string; hint: string }[];

  constructor(status: number, message: string, problems: { pointer: string; message: string; hint: string }[]) {
    super(message);
    this.status = status;
    this.problems = problems;
  }
}

let csrfToken = "";

/** Set once by main.tsx from the mount element. */
export function configureApi(csrf: string): void {
  csrfToken = csrf;
}

/** One JSON call to /api/v1 (`path` starts after the prefix); throws ApiError on non-2xx. */
export async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", "X-CSRF-Token": csrfToken };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(0, "the server did not answer: check that it runs, then try again", []);
  }
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const problem = (parsed ?? {}) as { detail?: string; title?: string; errors?: ApiError["problems"] };
    const words = problem.detail || problem.title || `HTTP ${response.status}`;
    const hint = response.status === 401 ? " (reload the page to sign in again)" : "";
    throw new ApiError(response.status, words + hint, problem.errors ?? []);
  }
  return parsed as T;
}

/** Pointers of a save's 422 point into the request body: `/definition/nodes/0` → `/nodes/0`. */
export function definitionPointer(pointer: string): string {
  return pointer.startsWith("/definition") ? pointer.slice("/definition".length) : pointer;
}

export const api = {
  schema: () => request<JsonObject>("GET", "/schemas/workflow.json"),
  validate: (definition: Definition, signal?: AbortSignal) =>
    request<ValidationReport>("POST", "/workflows/validate", { definition }, signal),
  workflow: (id: string) => request<WorkflowDetail>("GET", `/workflows/${id}`),
  versions: (id: string) => request<VersionRead[]>("GET", `/workflows/${id}/versions`),
  version: (id: string, versionId: string) => request<VersionRead>("GET", `/workflows/${id}/versions/${versionId}`),
  create: (name: string, definition: Definition) =>
    request<{ id: string; versionId: string; number: number }>("POST", "/workflows", { name, definition }),
  saveVersion: (id: string, definition: Definition) =>
    request<{ id: string; number: number }>("POST", `/workflows/${id}/versions`, { definition }),
  publish: (id: string, versionId: string) => request<WorkflowDetail>("POST", `/workflows/${id}/publish`, { versionId }),
};
