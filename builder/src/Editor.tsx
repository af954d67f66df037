// The builder: toolbar, palette, canvas or JSON, the form of the selected step (or of the
// workflow), and the dock of panels. The draft lives in an undo/redo history; every change is
// validated by the server (POST /api/v1/workflows/validate, nothing saved) a moment later.

import { ReactFlowProvider } from "@xyflow/react";
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from "react";

import { api, ApiError, definitionPointer } from "./api";
import { NodeForm } from "./forms/NodeForm";
import { WorkflowForm } from "./forms/WorkflowForm";
import { Canvas } from "./graph/Canvas";
import { addNode, nodeById, removeNode, renameNode, setNext, updateNode } from "./model/draft";
import { historyReducer, startHistory } from "./model/history";
import { byNode, fromReport } from "./model/problems";
import { outcomesOf as schemaOutcomes, type WorkflowSchema } from "./model/schema";
import { Dock } from "./panels/Dock";
import { JsonTab } from "./panels/JsonTab";
import { Palette } from "./panels/Palette";
import type { EditorContext } from "./panels/registry";
import type { Definition, Problem } from "./types";

const VALIDATE_AFTER_MS = 250;

export interface Saved {
  workflowId: string | null;
  versionId: string | null;
  number: number | null;
  /** The definition as last saved (or loaded): unchanged since → publishing is possible. */
  definition: Definition | null;
  publishedVersionId: string | null;
}

export interface EditorProps {
  schema: WorkflowSchema;
  initial: Definition;
  saved: Saved;
  readOnly: boolean;
}

function isTyping(target: EventTarget | null): boolean {
  const element = target as HTMLElement | null;
  return !!element && (element.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(element.tagName));
}

export function Editor({ schema, initial, saved: initialSaved, readOnly }: EditorProps) {
  const [history, dispatch] = useReducer(historyReducer, initial, startHistory);
  const definition = history.present;
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const [problems, setProblems] = useState<Problem[]>([]);
  const [checking, setChecking] = useState(false);
  const [view, setView] = useState<"graph" | "json">("graph");
  const [saved, setSaved] = useState<Saved>(initialSaved);
  const [status, setStatus] = useState<{ text: string; kind: "ok" | "error" | "info" } | null>(null);
  const [busy, setBusy] = useState(false);
  const outcomesOf = useCallback((kind: string) => schemaOutcomes(schema, kind), [schema]);

  const change = useCallback((next: Definition, key?: string) => {
    dispatch({ type: "change", definition: next, key, at: Date.now() });
  }, []);

  // Validate the draft a moment after each change; an answer for an older draft is dropped.
  const latest = useRef(definition);
  latest.current = definition;
  useEffect(() => {
    const controller = new AbortController();
    setChecking(true);
    const timer = window.setTimeout(() => {
      api
        .validate(definition, controller.signal)
        .then((report) => {
          if (latest.current === definition) setProblems(fromReport(report));
        })
        .catch((error: unknown) => {
          if (error instanceof ApiError) setStatus({ text: `Could not check the draft: ${error.message}`, kind: "error" });
        })
        .finally(() => {
          if (latest.current === definition) setChecking(false);
        });
    }, VALIDATE_AFTER_MS);
    return () => {
      window.clearTimeout(timer);
      controller.abort();
    };
  }, [definition]);

  // Undo / redo from the keyboard, except while typing (fields keep their own undo).
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (readOnly || isTyping(event.target) || !(event.ctrlKey || event.metaKey)) return;
      const key = event.key.toLowerCase();
      if (key === "z" && !event.shiftKey) dispatch({ type: "undo" });
      else if ((key === "z" && event.shiftKey) || key === "y") dispatch({ type: "redo" });
      else return;
      event.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [readOnly]);

  // A selection that no longer exists (undo, delete, JSON edit) is dropped.
  useEffect(() => {
    if (selectedId && !nodeById(definition, selectedId)) setSelectedId(null);
  }, [definition, selectedId]);

  const nodeProblems = useMemo(() => byNode(definition, problems), [definition, problems]);
  const selectedIndex = selectedId ? definition.nodes.findIndex((n) => n.id === selectedId) : -1;
  const selected = selectedIndex >= 0 ? definition.nodes[selectedIndex] : undefined;
  const errors = problems.filter((p) => p.severity === "error").length;
  const dirty = saved.definition !== definition;

  const ctx: EditorContext = {
    schema,
    definition,
    change,
    selectedId,
    select: setSelectedId,
    problems,
    workflowId: saved.workflowId,
    versionId: saved.versionId,
    readOnly,
  };

  const save = async () => {
    setBusy(true);
    setStatus({ text: "Saving…", kind: "info" });
    try {
      if (saved.workflowId) {
        const version = await api.saveVersion(saved.workflowId, definition);
        setSaved({ ...saved, versionId: version.id, number: version.number, definition });
        setStatus({ text: `Saved as version ${version.number}.`, kind: "ok" });
      } else {
        const name = typeof definition.name === "string" && definition.name.trim() ? definition.name.trim() : "Untitled";
        const created = await api.create(name, definition);
        setSaved({ ...saved, workflowId: created.id, versionId: created.versionId, number: created.number, definition });
        window.history.replaceState(null, "", `/workflows/${created.id}/edit`);
        setStatus({ text: `Created “${name}”, version ${created.number}.`, kind: "ok" });
      }
    } catch (error) {
      if (error instanceof ApiError && error.problems.length) {
        setProblems(error.problems.map((p) => ({ ...p, pointer: definitionPointer(p.pointer), severity: "error" })));
      }
      setStatus({ text: `Not saved: ${(error as Error).message}`, kind: "error" });
    } finally {
      setBusy(false);
    }
  };

  const publish = async () => {
    if (!saved.workflowId || !saved.versionId) return;
    setBusy(true);
    try {
      const workflow = await api.publish(saved.workflowId, saved.versionId);
      setSaved({ ...saved, publishedVersionId: workflow.publishedVersionId });
      setStatus({ text: `Version ${saved.number} is published: phones run it from now on.`, kind: "ok" });
    } catch (error) {
      setStatus({ text: `Not published: ${(error as Error).message}`, kind: "error" });
    } finally {
      setBusy(false);
    }
  };

  const add = (kind: string) => {
    const result = addNode(definition, kind, outcomesOf, selectedId ?? undefined);
    change(result.definition);
    setSelectedId(result.id);
    setView("graph");
  };

  const published = saved.versionId !== null && saved.publishedVersionId === saved.versionId;
  const savedWords =
    saved.number === null
      ? "Not saved yet"
      : saved.definition === null
        ? `Draft from version ${saved.number}: saving makes a new version`
        : dirty
          ? `Changed since version ${saved.number}`
          : `Version ${saved.number}${published ? " · published" : ""}`;

  return (
    <div className={`builder ${readOnly ? "read-only" : ""}`}>
      <header className="builder-bar">
        <div className="builder-title">
          <h1>{typeof definition.name === "string" && definition.name ? definition.name : "Untitled workflow"}</h1>
          <span className="muted" data-testid="save-state">
            {readOnly ? `Version ${saved.number} (read-only)` : savedWords}
          </span>
          <span className={`check-state ${errors ? "error" : ""}`} aria-live="polite">
            {checking ? "checking…" : errors ? `${errors} error${errors === 1 ? "" : "s"}` : "valid"}
          </span>
        </div>
        <div className="builder-actions">
          {readOnly ? (
            saved.workflowId &&
            saved.versionId && (
              <>
                <a className="button" href={`/workflows/${saved.workflowId}/edit?from_version=${saved.versionId}`}>
                  Start a draft from this version
                </a>
                <a className="button secondary" href={`/workflows/${saved.workflowId}#versions`}>
                  All versions
                </a>
              </>
            )
          ) : (
            <>
              <button type="button" onClick={() => dispatch({ type: "undo" })} disabled={!history.past.length} aria-keyshortcuts="Control+Z">
                Undo
              </button>
              <button type="button" onClick={() => dispatch({ type: "redo" })} disabled={!history.future.length} aria-keyshortcuts="Control+Shift+Z Control+Y">
                Redo
              </button>
              <button type="button" onClick={save} disabled={busy || (!dirty && saved.number !== null)}>
                Save version
              </button>
              <button
                type="button"
                onClick={publish}
                disabled={busy || dirty || saved.versionId === null || published}
                title={dirty ? "Save the draft first: only saved versions are published" : undefined}
              >
                Publish
              </button>
            </>
          )}
        </div>
        {status && (
          <p className={`builder-status ${status.kind}`} role={status.kind === "error" ? "alert" : "status"}>
            {status.text}
          </p>
        )}
      </header>
      {!readOnly && <Palette kinds={schema.kinds} onAdd={add} disabled={readOnly} after={selectedId} />}
      <section className="builder-main" aria-label="The workflow">
        <div role="tablist" aria-label="View" className="tabs">
          {(["graph", "json"] as const).map((name) => (
            <button key={name} type="button" role="tab" id={`view-${name}`} aria-selected={view === name} aria-controls="builder-view" onClick={() => setView(name)}>
              {name === "graph" ? "Graph" : "JSON"}
            </button>
          ))}
        </div>
        <div id="builder-view" role="tabpanel" aria-labelledby={`view-${view}`} className="builder-view">
          {view === "graph" ? (
            definition.nodes.length ? (
              <ReactFlowProvider>
                <Canvas
                  definition={definition}
                  problems={nodeProblems}
                  selectedId={selectedId}
                  outcomesOf={outcomesOf}
                  onSelect={setSelectedId}
                  readOnly={readOnly}
                  onConnect={(source, outcome, target) => {
                    const node = nodeById(definition, source);
                    if (node) change(setNext(definition, source, outcome, target, outcomesOf(node.kind)));
                  }}
                />
              </ReactFlowProvider>
            ) : (
              <p className="empty-canvas">No steps yet: choose one from “Add a step” (launchApp is a good first step).</p>
            )
          ) : (
            <JsonTab definition={definition} readOnly={readOnly} onChange={(next) => change(next, "json")} />
          )}
        </div>
      </section>
      <aside className="builder-inspector" aria-label="Settings">
        <div className="field step-picker">
          <label htmlFor="step-picker">Selected step</label>
          <select id="step-picker" value={selectedId ?? ""} onChange={(e) => setSelectedId(e.target.value || null)}>
            <option value="">— the workflow itself —</option>
            {definition.nodes.map((node) => (
              <option key={node.id} value={node.id}>
                {node.id} ({node.kind})
              </option>
            ))}
          </select>
        </div>
        {selected ? (
          <NodeForm
            key={selected.id}
            schema={schema}
            definition={definition}
            node={selected}
            index={selectedIndex}
            problems={problems}
            readOnly={readOnly}
            onNodeChange={(node, key) => change(updateNode(definition, selected.id, () => node), key)}
            onNext={(outcome, target) => change(setNext(definition, selected.id, outcome, target, outcomesOf(selected.kind)))}
            onRename={(to) => {
              change(renameNode(definition, selected.id, to, outcomesOf));
              setSelectedId(to);
            }}
            onDelete={() => {
              change(removeNode(definition, selected.id, outcomesOf));
              setSelectedId(null);
            }}
            onMakeStart={() => change({ ...definition, start: selected.id })}
          />
        ) : (
          <WorkflowForm schema={schema} definition={definition} problems={problems} readOnly={readOnly} onChange={change} />
        )}
      </aside>
      <Dock ctx={ctx} />
    </div>
  );
}
