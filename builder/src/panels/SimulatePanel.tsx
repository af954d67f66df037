// The Simulate panel: run the draft (unsaved) on the simulated phone and step through it screen
// by screen. The inputs form comes from the workflow's inputs schema; each approval step is
// answered here (approve, reject with a note, or let it time out); the phone holds the sample
// apps, one of the account's saved app models (GET /api/v1/app-models: recorded from a phone in
// the inspector, or uploaded), or an app model pasted as JSON. POST /api/v1/simulate answers the trace with the phone's screen
// before and after every step (drawn by the renderer of the virtual device's screenshots) and
// the element each step acted on, which is outlined.

import { useEffect, useId, useMemo, useRef, useState, type KeyboardEvent } from "react";

import { ApiError, definitionPointer, request } from "../api";
import { SchemaField } from "../forms/fields";
import type { Definition, JsonObject } from "../types";
import type { PanelProps } from "./registry";
import {
  approvalNodes,
  firstStepToShow,
  inputFields,
  inputsToSend,
  outlineStyle,
  scenarioOf,
  type ApprovalAnswer,
  type ScreenPicture,
  type SimulationResult,
  type StepScreens,
} from "./simulation";

const PLAY_EVERY_MS = 900;
const SAMPLE_APPS = "";
const PASTED = "paste";

interface SavedAppModel {
  id: string;
  name: string;
  packages: string[];
  screens: number;
}

interface Outcome {
  /** Counts the runs, so that a new result starts its view afresh (not playing). */
  run: number;
  result: SimulationResult;
  /** The draft that was simulated: a later change makes the result stale. */
  definition: Definition;
}

export function SimulatePanel({ ctx }: PanelProps) {
  const { definition, select } = ctx;
  const [values, setValues] = useState<JsonObject>({});
  const [answers, setAnswers] = useState<Record<string, ApprovalAnswer>>({});
  // SAMPLE_APPS, PASTED or the id of a saved app model
  const [appSource, setAppSource] = useState(SAMPLE_APPS);
  const [saved, setSaved] = useState<SavedAppModel[]>([]);
  const [appsText, setAppsText] = useState("");
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<{ message: string; problems: ApiError["problems"] } | null>(null);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const [index, setIndex] = useState(0);
  const shape = inputFields(definition);
  const approvals = approvalNodes(definition);
  const ids = useId().replace(/[^A-Za-z0-9]/g, "");

  useEffect(() => {
    request<SavedAppModel[]>("GET", "/app-models")
      .then(setSaved)
      .catch(() => setSaved([])); // the sample apps and pasting still work
  }, []);

  const simulate = async () => {
    let apps: JsonObject | null = null;
    if (appSource === PASTED) {
      try {
        apps = JSON.parse(appsText) as JsonObject;
      } catch (exc) {
        setError({ message: `The app model is not JSON: ${(exc as Error).message}`, problems: [] });
        return;
      }
    }
    setRunning(true);
    setError(null);
    const simulated = definition;
    try {
      if (appSource !== SAMPLE_APPS && appSource !== PASTED) {
        // Read at each run: recording in the inspector keeps adding to a saved model.
        apps = (await request<{ model: JsonObject }>("GET", `/app-models/${appSource}`)).model;
      }
      const result = await request<SimulationResult>("POST", "/simulate", {
        definition: simulated,
        inputs: inputsToSend(simulated, values),
        apps,
        scenario: scenarioOf(answers, approvals),
      });
      const first = firstStepToShow(result);
      setOutcome((previous) => ({ run: (previous?.run ?? 0) + 1, result, definition: simulated }));
      setIndex(first);
      if (result.trace[first]) select(result.trace[first].nodeId);
    } catch (exc) {
      if (exc instanceof ApiError) setError({ message: exc.message, problems: exc.problems });
      else throw exc;
    } finally {
      setRunning(false);
    }
  };

  return (
    <div className="simulate">
      <form
        className="simulate-form"
        aria-label="Simulate the draft"
        onSubmit={(event) => {
          event.preventDefault();
          void simulate();
        }}
      >
        <fieldset className="group">
          <legend>Inputs</legend>
          {shape ? (
            shape.fields.map(([name, schema]) => (
              <SchemaField
                key={name}
                root={(definition.inputs ?? {}) as JsonObject}
                name={name}
                schema={schema}
                value={values[name]}
                required={shape.required.includes(name)}
                pointer={`/simulate/inputs/${name}`}
                problems={[]}
                onChange={(value) => {
                  const next = { ...values };
                  if (value === undefined) delete next[name];
                  else next[name] = value;
                  setValues(next);
                }}
              />
            ))
          ) : (
            <p className="muted">The workflow takes no inputs.</p>
          )}
        </fieldset>
        {approvals.length > 0 && (
          <fieldset className="group">
            <legend>Approvals</legend>
            {approvals.map((id) => (
              <ApprovalField
                key={id}
                nodeId={id}
                answer={answers[id] ?? { choice: "approve", note: "" }}
                onChange={(answer) => setAnswers({ ...answers, [id]: answer })}
              />
            ))}
          </fieldset>
        )}
        <fieldset className="group">
          <legend>Phone</legend>
          <div className="field">
            <label htmlFor={`${ids}-apps-source`}>App model</label>
            <select id={`${ids}-apps-source`} value={appSource} onChange={(e) => setAppSource(e.target.value)} aria-describedby={`${ids}-apps-help`}>
              <option value={SAMPLE_APPS}>The sample apps</option>
              {saved.map((model) => (
                <option key={model.id} value={model.id}>
                  {model.name} ({model.packages.join(", ") || "empty"}, {model.screens} screen{model.screens === 1 ? "" : "s"})
                </option>
              ))}
              <option value={PASTED}>Paste an app model (JSON)…</option>
            </select>
            <p className="help" id={`${ids}-apps-help`}>
              The sample apps: Shop, Settings, Bank, Catalogue. Saved app models are the account&apos;s own (recorded from a phone in Inspect).
            </p>
          </div>
          {appSource === PASTED && (
            <div className="field">
              <label htmlFor={`${ids}-apps`}>App model (JSON)</label>
              <textarea
                id={`${ids}-apps`}
                rows={6}
                value={appsText}
                placeholder='{"schemaVersion": 1, "extends": "sample-apps", "apps": [...]}'
                onChange={(e) => setAppsText(e.target.value)}
              />
            </div>
          )}
        </fieldset>
        <div className="form-actions">
          <button type="submit" className="button" disabled={running || !definition.nodes.length}>
            {running ? "Simulating…" : "Simulate"}
          </button>
          <span className="muted">Runs the draft as it is now; nothing is saved.</span>
        </div>
        {error && (
          <div className="builder-status error" role="alert">
            {error.message}
            {error.problems.length > 0 && (
              <ul className="problem-list">
                {error.problems.map((problem, i) => (
                  <li key={i}>
                    <code>{definitionPointer(problem.pointer) || "/"}</code> {problem.message}
                  </li>
                ))}
              </ul>
            )}
          </div>
        )}
      </form>
      {outcome && (
        <SimulationView
          key={outcome.run}
          result={outcome.result}
          stale={outcome.definition !== definition}
          index={index}
          onIndex={(next) => {
            setIndex(next);
            const event = outcome.result.trace[next];
            if (event) select(event.nodeId);
          }}
        />
      )}
    </div>
  );
}

function ApprovalField({
  nodeId,
  answer,
  onChange,
}: {
  nodeId: string;
  answer: ApprovalAnswer;
  onChange: (answer: ApprovalAnswer) => void;
}) {
  const name = `approval-${useId().replace(/[^A-Za-z0-9]/g, "")}`;
  const choices: [ApprovalAnswer["choice"], string][] = [
    ["approve", "Approve"],
    ["reject", "Reject"],
    ["timeout", "Let it time out"],
  ];
  return (
    <fieldset className="plain approval-answer" data-approval={nodeId}>
      <legend>
        Step <code>{nodeId}</code>
      </legend>
      <div className="choices">
        {choices.map(([choice, label]) => (
          <label key={choice} className="choice">
            <input type="radio" name={name} value={choice} checked={answer.choice === choice} onChange={() => onChange({ ...answer, choice })} />{" "}
            {label}
          </label>
        ))}
      </div>
      {answer.choice === "reject" && (
        <div className="field">
          <label htmlFor={`${name}-note`}>Note for {nodeId}</label>
          <input id={`${name}-note`} type="text" value={answer.note} onChange={(e) => onChange({ ...answer, note: e.target.value })} />
        </div>
      )}
    </fieldset>
  );
}

function SimulationView({
  result,
  stale,
  index,
  onIndex,
}: {
  result: SimulationResult;
  stale: boolean;
  index: number;
  onIndex: (index: number) => void;
}) {
  const [playing, setPlaying] = useState(false);
  const count = result.trace.length;
  const event = result.trace[index];
  const listRef = useRef<HTMLOListElement>(null);

  useEffect(() => {
    if (!playing) return;
    if (index >= count - 1) {
      setPlaying(false);
      return;
    }
    const timer = window.setTimeout(() => onIndex(index + 1), PLAY_EVERY_MS);
    return () => window.clearTimeout(timer);
  }, [playing, index, count, onIndex]);

  const go = (next: number) => {
    const clamped = Math.max(0, Math.min(count - 1, next));
    onIndex(clamped);
    listRef.current?.querySelector<HTMLButtonElement>(`[data-seq-index="${clamped}"]`)?.focus();
  };
  const onKey = (e: KeyboardEvent) => {
    const moves: Record<string, number> = { ArrowDown: index + 1, ArrowRight: index + 1, ArrowUp: index - 1, ArrowLeft: index - 1, Home: 0, End: count - 1 };
    if (e.key in moves) {
      e.preventDefault();
      setPlaying(false);
      go(moves[e.key]);
    }
  };
  const summary =
    result.status === "success"
      ? `The run succeeded in ${count} step${count === 1 ? "" : "s"}.`
      : `The run ended ${result.status}${result.errorMessage ? `: ${result.errorMessage}` : "."}`;

  return (
    <section className="simulation" aria-label="Simulation result">
      <p className={`builder-status ${result.status === "success" ? "ok" : "error"}`} role="status" data-run-status={result.status}>
        {summary}
        {result.httpSimulated && result.trace.some((e) => e.kind === "action.http") && " HTTP steps got a canned 200 (nothing was called)."}
        {result.imagesTruncated && " The run showed too many screens: the later ones are not drawn."}
      </p>
      {stale && <p className="muted stale-note">The draft changed since this run: simulate again to see it.</p>}
      {count === 0 ? (
        <p className="muted">No step ran.</p>
      ) : (
        <div className="simulation-body">
          <div className="simulation-steps">
            <div className="player" role="group" aria-label="Step through the run">
              <button type="button" className="small" onClick={() => go(index - 1)} disabled={index <= 0} aria-label="Back one step">
                ◀ Back
              </button>
              <button type="button" className="small" onClick={() => setPlaying(!playing)} aria-label={playing ? "Pause" : "Play"} disabled={count < 2}>
                {playing ? "❚❚ Pause" : "▶ Play"}
              </button>
              <button type="button" className="small" onClick={() => go(index + 1)} disabled={index >= count - 1} aria-label="Next step">
                Step ▶
              </button>
              <span className="muted" aria-live="polite">
                Step {index + 1} of {count}
              </span>
            </div>
            <ol className="sim-steps" aria-label="Simulated steps" ref={listRef} onKeyDown={onKey}>
              {result.trace.map((e, i) => (
                <li key={e.seq} className={`sim-step ${e.outcome}`}>
                  <button
                    type="button"
                    data-seq-index={i}
                    data-node-id={e.nodeId}
                    aria-current={i === index ? "step" : undefined}
                    tabIndex={i === index ? 0 : -1}
                    onClick={() => {
                      setPlaying(false);
                      onIndex(i);
                    }}
                  >
                    <span className="sim-seq">{e.seq}</span> <span className="sim-node">{e.nodeId}</span>{" "}
                    <span className={`sim-outcome ${e.outcome}`}>{e.outcome}</span>
                  </button>
                </li>
              ))}
            </ol>
          </div>
          {event && <StepDetail result={result} index={index} />}
        </div>
      )}
    </section>
  );
}

function StepDetail({ result, index }: { result: SimulationResult; index: number }) {
  const event = result.trace[index];
  const screens: StepScreens | undefined = event.screens;
  const size = result.screenSize ?? { width: 1080, height: 2340 };
  const acted = screens?.actedOn ?? null;
  // The outline goes on the picture the element was found on: the one before the step, or
  // after it for a wait that saw the element appear.
  const foundAfter = !!acted && !!screens && acted.screen === screens.after && acted.screen !== screens.before;
  const output = useMemo(() => JSON.stringify(event.output, null, 1), [event.output]);
  return (
    <div className="sim-detail" data-step-detail={event.nodeId}>
      <h3>
        Step {event.seq}: <code>{event.nodeId}</code> <span className="muted">{event.kind}</span>{" "}
        <span className={`sim-outcome ${event.outcome}`}>{event.outcome}</span>
      </h3>
      {event.message && (
        <p className={event.outcome === "failed" ? "sim-message failed" : "sim-message"} data-step-message>
          {event.message}
        </p>
      )}
      {screens ? (
        <div className="sim-screens">
          <ScreenFigure title="Before" role="before" nodeId={event.nodeId} picture={pictureOf(result, screens.before)} size={size} outline={acted && !foundAfter ? acted.bounds : null} />
          <ScreenFigure title="After" role="after" nodeId={event.nodeId} picture={pictureOf(result, screens.after)} size={size} outline={acted && foundAfter ? acted.bounds : null} />
        </div>
      ) : (
        <p className="muted">No screens for this step.</p>
      )}
      {output !== "{}" && (
        <details>
          <summary>Output</summary>
          <pre>{output}</pre>
        </details>
      )}
    </div>
  );
}

function pictureOf(result: SimulationResult, id: string | null): ScreenPicture | null {
  return id ? (result.images[id] ?? null) : null;
}

function ScreenFigure({
  title,
  role,
  nodeId,
  picture,
  size,
  outline,
}: {
  title: string;
  role: "before" | "after";
  nodeId: string;
  picture: ScreenPicture | null;
  size: { width: number; height: number };
  outline: { left: number; top: number; right: number; bottom: number } | null;
}) {
  return (
    <figure className="sim-screen" data-screen={role}>
      <figcaption>{title}</figcaption>
      {picture ? (
        <div className="sim-phone">
          <img src={picture.uri} width={picture.width} height={picture.height} alt={`The phone's screen ${role} step ${nodeId}`} />
          {outline && <div className="sim-outline" data-outline style={outlineStyle(outline, size)} title="The element the step acted on" />}
        </div>
      ) : (
        <p className="muted">Not drawn.</p>
      )}
    </figure>
  );
}
