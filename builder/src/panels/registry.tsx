// The dock under the canvas: a tab strip of panels ("Problems | Simulate | Inspect | …").
//
// To add a panel, write a component that takes `PanelProps` and append it to `DOCK_PANELS`
// below. A panel reads the draft and the validator's problems from `ctx`, changes the draft
// only through `ctx.change` (so undo/redo and validation follow), selects steps with
// `ctx.select`, and calls the server through `api` / `request` from ../api (public /api/v1 only).

import type { ReactNode } from "react";

import type { WorkflowSchema } from "../model/schema";
import type { Definition, Problem } from "../types";
import { InspectPanel } from "./InspectPanel";
import { ProblemsPanel } from "./ProblemsPanel";
import { SimulatePanel } from "./SimulatePanel";

export interface EditorContext {
  schema: WorkflowSchema;
  /** The draft as it is now. */
  definition: Definition;
  /** Replace the draft (one undo step; the same `key` within a second coalesces). */
  change: (definition: Definition, key?: string) => void;
  selectedId: string | null;
  select: (id: string | null) => void;
  /** The validator's problems of the draft (pointers into the definition). */
  problems: Problem[];
  /** Set once the workflow exists on the server (after the first save of a new one). */
  workflowId: string | null;
  /** The saved version this draft started from or was last saved as. */
  versionId: string | null;
  readOnly: boolean;
}

export interface PanelProps {
  ctx: EditorContext;
}

export interface DockPanel {
  id: string;
  title: string;
  /** A short count shown on the tab (e.g. the number of problems), or nothing. */
  badge?: (ctx: EditorContext) => string | number | null;
  render: (props: PanelProps) => ReactNode;
}

export const DOCK_PANELS: DockPanel[] = [
  {
    id: "problems",
    title: "Problems",
    badge: (ctx) => (ctx.problems.length ? ctx.problems.length : null),
    render: (props) => <ProblemsPanel {...props} />,
  },
  { id: "simulate", title: "Simulate", render: (props) => <SimulatePanel {...props} /> },
  { id: "inspect", title: "Inspect", render: (props) => <InspectPanel {...props} /> },
];
