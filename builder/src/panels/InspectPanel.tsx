// The screen inspector: a paired phone's live screen through its bridge. Hover outlines elements,
// a click picks one and shows the selectors that find it (counted by the server's matcher on the
// same hierarchy); "add step" puts a tap / type / wait / read step with that selector in the draft.
// Recording: each click on the picture is done on the phone, added to the draft as a tap step, and
// recorded into one of the account's app models (the screens visited, what the click did), which
// the Simulate panel can then run the workflow on.

import { useEffect, useRef, useState } from "react";

import { ApiError } from "../api";
import { runCommand, inspectApi } from "../inspect/commands";
import { ElementDetails, waitText, type StepKind } from "../inspect/ElementDetails";
import { ScreenOverlay, elementName } from "../inspect/ScreenOverlay";
import { RecordControls } from "../inspect/RecordControls";
import type { AppModelRead, Command, DeviceSummary, ScreenElement, SelectorMatch } from "../inspect/types";
import { addNode, updateNode } from "../model/draft";
import { outcomesOf } from "../model/schema";
import type { Definition, JsonObject } from "../types";
import type { PanelProps } from "./registry";

interface Status {
  text: string;
  kind: "info" | "ok" | "error";
}

function imageOf(command: Command): string {
  const shot = command.result?.screenshot;
  return shot ? `data:${shot.contentType};base64,${shot.data}` : "";
}

/** The params of a new step of `kind` for `element` found by `selector`. */
export function stepParams(kind: StepKind, selector: SelectorMatch["selector"], element: ScreenElement): JsonObject {
  if (kind === "action.waitForText") return { text: waitText(element) };
  if (kind === "action.typeText") return { text: "", selector };
  return { selector };
}

/** What a finger on `element` clicks: the element, or its nearest ancestor that takes clicks. */
export function tapTarget(elements: ScreenElement[], element: ScreenElement): ScreenElement {
  let node: ScreenElement | undefined = element;
  while (node) {
    if (node.clickable || node.editable) return node;
    node = node.parent === null ? undefined : elements[node.parent];
  }
  return element;
}

export function InspectPanel({ ctx }: PanelProps) {
  // Async work (a click on the phone) ends after renders: it reads the draft as it is then.
  const ctxRef = useRef(ctx);
  ctxRef.current = ctx;
  const [recording, setRecording] = useState<AppModelRead | null>(null);
  const [devices, setDevices] = useState<DeviceSummary[] | null>(null);
  const [deviceId, setDeviceId] = useState("");
  const [screen, setScreen] = useState<Command | null>(null);
  const [selectedId, setSelectedId] = useState<number | null>(null);
  const [status, setStatus] = useState<Status | null>(null);
  const [busy, setBusy] = useState(false);
  const abort = useRef<AbortController | null>(null);

  useEffect(() => {
    inspectApi
      .devices()
      .then((all) => {
        const live = all.filter((d) => !d.revokedAt);
        setDevices(live);
        if (live.length) setDeviceId(live[0].id);
      })
      .catch((error: unknown) => setStatus({ text: String((error as Error).message), kind: "error" }));
    return () => abort.current?.abort();
  }, []);

  const inspect = async () => {
    abort.current?.abort();
    abort.current = new AbortController();
    setBusy(true);
    setStatus({ text: "Asking the phone for its screen…", kind: "info" });
    try {
      const command = await runCommand(deviceId, "inspect", {}, abort.current.signal);
      setScreen(command);
      setSelectedId(null);
      const count = command.inspection?.elements.length ?? 0;
      setStatus({ text: `The screen of ${command.result?.foreground?.package ?? "the phone"}: ${count} elements.`, kind: "ok" });
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError") return;
      setStatus({ text: error instanceof ApiError ? error.message : String(error), kind: "error" });
    } finally {
      setBusy(false);
    }
  };

  /** The draft with a step of `kind` after the selected step (or the last one); the new id. */
  const withStep = (definition: Definition, kind: string, params: JsonObject) => {
    const current = ctxRef.current;
    const after = current.selectedId ?? definition.nodes[definition.nodes.length - 1]?.id;
    const added = addNode(definition, kind, (k) => outcomesOf(current.schema, k), after);
    return { definition: updateNode(added.definition, added.id, (node) => ({ ...node, params })), id: added.id };
  };

  const add = (kind: StepKind, selector: SelectorMatch["selector"]) => {
    const element = screen?.inspection?.elements.find((e) => e.id === selectedId);
    if (!element) return;
    const added = withStep(ctx.definition, kind, stepParams(kind, selector, element));
    ctx.change(added.definition);
    ctx.select(added.id);
    setStatus({ text: `Added step ${added.id} (${kind}) for “${elementName(element)}”.`, kind: "ok" });
  };

  const startRecording = async (model: AppModelRead) => {
    if (!screen) return;
    setBusy(true);
    try {
      const answer = await inspectApi.record(model.id, deviceId, screen.id);
      setRecording(answer.appModel);
      const current = ctxRef.current;
      const packageName = answer.recorded.package;
      const launches = current.definition.nodes.some(
        (node) => node.kind === "action.launchApp" && node.params?.package === packageName,
      );
      if (!launches) {
        const added = withStep(current.definition, "action.launchApp", { package: packageName, stopFirst: true });
        current.change(added.definition);
        current.select(added.id);
      }
      setStatus({ text: `Recording into “${answer.appModel.name}”: click the screen to click the phone.`, kind: "ok" });
    } catch (error) {
      setStatus({ text: error instanceof ApiError ? error.message : String(error), kind: "error" });
    } finally {
      setBusy(false);
    }
  };

  const recordClick = async (element: ScreenElement | null) => {
    const elements = screen?.inspection?.elements ?? [];
    if (!recording || !element) {
      setStatus({ text: "Nothing there to click: click an element of the app.", kind: "error" });
      return;
    }
    const target = tapTarget(elements, element);
    const selector = target.selectors[0]?.selector;
    const [left, top, right, bottom] = target.bounds;
    setBusy(true);
    setStatus({ text: `Clicking “${elementName(target)}” on the phone…`, kind: "info" });
    try {
      const x = Math.floor((left + right) / 2);
      const y = Math.floor((top + bottom) / 2);
      const click = await runCommand(deviceId, "click", { x, y });
      const answer = await inspectApi.record(recording.id, deviceId, click.id);
      setRecording(answer.appModel);
      setScreen(click);
      setSelectedId(null);
      const { before, screen: after } = answer.recorded;
      let words = `Clicked “${elementName(target)}”: ${before} → ${after}.`;
      if (selector) {
        const current = ctxRef.current;
        const added = withStep(current.definition, "action.tap", { selector });
        current.change(added.definition);
        current.select(added.id);
        words += ` Added step ${added.id}.`;
      } else {
        words += " No selector finds that element, so no step was added.";
      }
      setStatus({ text: words, kind: "ok" });
    } catch (error) {
      setStatus({ text: error instanceof ApiError ? error.message : String(error), kind: "error" });
    } finally {
      setBusy(false);
    }
  };

  if (devices !== null && devices.length === 0) {
    return (
      <p className="muted">
        No paired phone: pair one on the <a href="/devices">Devices</a> page and start its bridge
        (<code>phoneflow bridge run</code>), then inspect its screen here.
      </p>
    );
  }
  const inspection = screen?.inspection ?? null;
  const selected = inspection?.elements.find((e) => e.id === selectedId) ?? null;
  const visible = inspection?.elements.filter((e) => e.visible) ?? [];
  return (
    <div className="inspect-panel">
      <div className="inspect-bar">
        <label>
          Phone{" "}
          <select value={deviceId} onChange={(event) => setDeviceId(event.target.value)} disabled={busy || devices === null}>
            {(devices ?? []).map((device) => (
              <option key={device.id} value={device.id}>
                {device.name} ({device.serial})
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="button" onClick={inspect} disabled={busy || !deviceId}>
          {screen ? "Inspect again" : "Inspect"}
        </button>
        {status && (
          <p className={`inspect-status ${status.kind}`} role="status">
            {status.text}
          </p>
        )}
      </div>
      {screen && !ctx.readOnly && (
        <RecordControls
          recording={recording}
          busy={busy}
          onStart={(model) => void startRecording(model)}
          onStop={() => {
            setRecording(null);
            setStatus({ text: "Recording stopped: clicks pick elements again.", kind: "info" });
          }}
          onError={(text) => setStatus({ text, kind: "error" })}
        />
      )}
      {screen && inspection && (
        <div className="inspect-body">
          <ScreenOverlay
            image={imageOf(screen)}
            inspection={inspection}
            selectedId={selectedId}
            onSelect={(element) => setSelectedId(element ? element.id : null)}
            onPoint={recording ? (_x, _y, element) => void recordClick(element) : undefined}
            busy={busy}
            label="The phone's screen"
          />
          <div className="inspect-details">
            <label>
              Element{" "}
              <select
                value={selectedId ?? ""}
                onChange={(event) => setSelectedId(event.target.value === "" ? null : Number(event.target.value))}
              >
                <option value="">— pick on the screen or here —</option>
                {visible.map((element) => (
                  <option key={element.id} value={element.id}>
                    {"  ".repeat(element.depth)}
                    {elementName(element)} ({element.className.split(".").pop()})
                  </option>
                ))}
              </select>
            </label>
            {inspection.error && <p className="inspect-status error">{inspection.error}</p>}
            {selected ? (
              <ElementDetails element={selected} onAdd={ctx.readOnly ? undefined : add} />
            ) : (
              <p className="muted">Hover the screen to see its elements; click one to see how to find it.</p>
            )}
          </div>
        </div>
      )}
    </div>
  );
}
