// The definition as JSON text, kept in sync both ways: edits elsewhere rewrite the text; text
// that parses (and can be drawn) becomes the draft at once; text that does not says why here.

import { useEffect, useRef, useState } from "react";

import { shapeProblem } from "../model/draft";
import type { Definition } from "../types";

export function JsonTab(props: { definition: Definition; readOnly: boolean; onChange: (definition: Definition) => void }) {
  const { definition, readOnly, onChange } = props;
  const [text, setText] = useState(() => JSON.stringify(definition, null, 2));
  const [error, setError] = useState<string | null>(null);
  const mine = useRef<Definition>(definition);
  useEffect(() => {
    if (definition !== mine.current) {
      mine.current = definition;
      setText(JSON.stringify(definition, null, 2));
      setError(null);
    }
  }, [definition]);
  return (
    <div className="json-tab">
      <label htmlFor="definition-json" className="sr-only">
        The workflow definition as JSON
      </label>
      <textarea
        id="definition-json"
        className="mono"
        spellCheck={false}
        value={text}
        readOnly={readOnly}
        aria-invalid={error ? true : undefined}
        aria-describedby="definition-json-status"
        onChange={(e) => {
          setText(e.target.value);
          let parsed: unknown;
          try {
            parsed = JSON.parse(e.target.value);
          } catch (exc) {
            setError(`not valid JSON: ${(exc as Error).message} — the graph keeps the last valid definition`);
            return;
          }
          const shape = shapeProblem(parsed);
          if (shape) {
            setError(`${shape} — the graph keeps the last definition it could draw`);
            return;
          }
          setError(null);
          mine.current = parsed as Definition;
          onChange(parsed as Definition);
        }}
      />
      <p id="definition-json-status" className={error ? "json-status error" : "json-status"} role="status">
        {error ?? "In sync with the graph and the forms."}
      </p>
    </div>
  );
}
