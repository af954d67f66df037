// The element picked on the screen: its attributes, the selectors that find it (each with how many
// elements it matches on this screen, unique ones first) and, in the builder, "add step" buttons.

import { useEffect, useState } from "react";

import { elementName } from "./ScreenOverlay";
import type { ScreenElement, SelectorMatch } from "./types";

export type StepKind = "action.tap" | "action.typeText" | "action.waitForText" | "action.readText";

export const STEP_BUTTONS: { kind: StepKind; label: string }[] = [
  { kind: "action.tap", label: "Tap" },
  { kind: "action.typeText", label: "Type" },
  { kind: "action.waitForText", label: "Wait" },
  { kind: "action.readText", label: "Read" },
];

/** A selector as one line: `resourceId = com.x:id/save · index 1`. */
export function selectorWords(selector: SelectorMatch["selector"]): string {
  return Object.entries(selector)
    .map(([key, value]) => (key === "index" ? `index ${value}` : `${key} = ${value}`))
    .join(" · ");
}

/** The text a wait step waits for: the element's text, else its description. */
export function waitText(element: ScreenElement): string {
  return element.text.trim() || element.contentDesc.trim();
}

const ATTRIBUTES: [keyof ScreenElement, string][] = [
  ["text", "text"],
  ["resourceId", "resource-id"],
  ["contentDesc", "content-desc"],
  ["className", "class"],
  ["package", "package"],
];

interface Props {
  element: ScreenElement;
  onAdd?: (kind: StepKind, selector: SelectorMatch["selector"]) => void;
}

export function ElementDetails({ element, onAdd }: Props) {
  const [chosen, setChosen] = useState(0);
  useEffect(() => setChosen(0), [element]);
  const selector = element.selectors[chosen]?.selector;
  const flags = (["clickable", "editable", "scrollable", "enabled", "checked", "selected", "password"] as const).filter(
    (flag) => element[flag],
  );
  return (
    <section className="element-details" aria-label={`Element ${elementName(element)}`}>
      <h3>{elementName(element)}</h3>
      <table className="attributes">
        <tbody>
          {ATTRIBUTES.filter(([key]) => element[key] !== "").map(([key, label]) => (
            <tr key={key}>
              <th scope="row">{label}</th>
              <td><code>{String(element[key])}</code></td>
            </tr>
          ))}
          <tr>
            <th scope="row">bounds</th>
            <td><code>[{element.bounds[0]},{element.bounds[1]}][{element.bounds[2]},{element.bounds[3]}]</code></td>
          </tr>
          {flags.length > 0 && (
            <tr>
              <th scope="row">flags</th>
              <td>{flags.join(", ")}</td>
            </tr>
          )}
        </tbody>
      </table>
      {element.selectors.length === 0 ? (
        <p className="muted">No selector finds this element: it is not wholly on the screen.</p>
      ) : (
        <fieldset className="selectors">
          <legend>Selectors that find it</legend>
          {element.selectors.map((match, index) => (
            <label key={index} className={`selector-row${match.unique ? " unique" : ""}`} data-matches={match.matches}>
              <input type="radio" name="selector" checked={chosen === index} onChange={() => setChosen(index)} />
              <code>{selectorWords(match.selector)}</code>
              <span className="match-count">
                {match.unique ? "unique" : `matches ${match.matches}`}
              </span>
            </label>
          ))}
        </fieldset>
      )}
      {onAdd && selector && (
        <div className="add-step" role="group" aria-label="Add a step with this selector">
          {STEP_BUTTONS.map(({ kind, label }) => (
            <button
              key={kind}
              type="button"
              className="button secondary"
              disabled={kind === "action.waitForText" && !waitText(element)}
              title={kind === "action.waitForText" ? "Wait until this element's text is on the screen" : undefined}
              onClick={() => onAdd(kind, selector)}
            >
              Add {label.toLowerCase()} step
            </button>
          ))}
        </div>
      )}
    </section>
  );
}
