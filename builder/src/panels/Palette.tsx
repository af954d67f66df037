// Every node kind with its one-line help (from the schema). Choosing one adds a step after the
// selected step (on its first outcome), or as the start of an empty draft.

import type { KindInfo } from "../model/schema";

export function Palette(props: { kinds: KindInfo[]; onAdd: (kind: string) => void; disabled: boolean; after: string | null }) {
  const { kinds, onAdd, disabled, after } = props;
  const groups: [string, KindInfo[]][] = [
    ["Actions", kinds.filter((k) => k.kind.startsWith("action."))],
    ["Control", kinds.filter((k) => !k.kind.startsWith("action."))],
  ];
  return (
    <nav className="palette" aria-label="Add a step">
      <h2>Add a step</h2>
      <p className="help">{after ? `Adds after “${after}”.` : "Adds a step; select a step first to add after it."}</p>
      {groups.map(([title, list]) => (
        <section key={title}>
          <h3>{title}</h3>
          <ul>
            {list.map((info) => (
              <li key={info.kind}>
                <button
                  type="button"
                  className="palette-item"
                  data-kind={info.kind}
                  disabled={disabled}
                  aria-describedby={`help-${info.kind.replace(".", "-")}`}
                  onClick={() => onAdd(info.kind)}
                >
                  {info.kind.replace(/^(action|control)\./, "")}
                </button>
                <span className="palette-help" id={`help-${info.kind.replace(".", "-")}`}>
                  {info.help}
                </span>
              </li>
            ))}
          </ul>
        </section>
      ))}
    </nav>
  );
}
