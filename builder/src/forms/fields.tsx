// Form fields generated from JSON Schema: one component per kind of schema (enum, string, number,
// boolean, list of strings, object with properties, selector, any JSON). Every field has a label,
// its schema description as help text, and the validator's problems at its JSON pointer.

import { useEffect, useId, useRef, useState, type ReactNode } from "react";

import { isObject } from "../model/draft";
import { problemsAt, pointerKey } from "../model/problems";
import { resolve, type FieldSchema } from "../model/schema";
import type { Json, JsonObject, Problem } from "../types";

const LABELS: Record<string, string> = {
  timeoutMs: "Timeout (ms)",
  timeoutS: "Timeout (s)",
  frames: "Screens per step",
  delayMs: "Delay (ms)",
  ms: "Milliseconds",
  maxSwipes: "Most swipes",
  saveAs: "Save as variable",
  textVisible: "Text visible",
  expr: "Expression (CEL)",
  resourceId: "Resource id",
  className: "Class name",
  textContains: "Text contains",
  textMatches: "Text matches (regex)",
  url: "URL",
  max: "Extra attempts",
  stopFirst: "Stop the app first",
  targetPackages: "Target packages",
};

export function labelOf(name: string): string {
  if (LABELS[name]) return LABELS[name];
  const words = name.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export interface FieldProps {
  root: JsonObject;
  name: string;
  schema: FieldSchema;
  value: Json | undefined;
  onChange: (value: Json | undefined) => void;
  pointer: string;
  problems: Problem[];
  required?: boolean;
  readOnly?: boolean;
  label?: string;
}

function describe(schema: FieldSchema): string {
  const parts: string[] = [];
  if (typeof schema.description === "string") parts.push(schema.description);
  if (schema.default !== undefined && typeof schema.default !== "object") parts.push(`Default: ${String(schema.default)}.`);
  return parts.join(" ");
}

/** Label, control, help and problems of one field, wired for screen readers. */
export function FieldShell(props: {
  id: string;
  label: string;
  help: string;
  problems: Problem[];
  required?: boolean;
  pointer: string;
  inline?: boolean;
  children: (aria: { "aria-describedby"?: string; "aria-invalid"?: boolean; "aria-required"?: boolean }) => ReactNode;
}) {
  const { id, label, help, problems, required, pointer, inline, children } = props;
  const described = [help ? `${id}-help` : "", problems.length ? `${id}-problems` : ""].filter(Boolean).join(" ");
  const errors = problems.some((p) => p.severity === "error");
  return (
    <div className={`field ${inline ? "inline" : ""} ${errors ? "invalid" : problems.length ? "warned" : ""}`} data-pointer={pointer}>
      <span className="label-row">
        <label htmlFor={id}>{label}</label>
        {required && (
          <span className="required" title="required">
            {" *"}
          </span>
        )}
      </span>
      {children({ "aria-describedby": described || undefined, "aria-invalid": errors || undefined, "aria-required": required || undefined })}
      {help && (
        <p className="help" id={`${id}-help`}>
          {help}
        </p>
      )}
      <ProblemList id={`${id}-problems`} problems={problems} />
    </div>
  );
}

export function ProblemList({ id, problems }: { id?: string; problems: Problem[] }) {
  if (!problems.length) return null;
  return (
    <ul className="field-problems" id={id}>
      {problems.map((p, i) => (
        <li key={i} className={p.severity}>
          {p.message}
          {p.hint && <span className="hint"> — {p.hint}</span>}
        </li>
      ))}
    </ul>
  );
}

function useFieldId(pointer: string): string {
  const unique = useId().replace(/[^A-Za-z0-9]/g, "");
  return `f${unique}${pointer.replace(/[^A-Za-z0-9]/g, "-")}`;
}

/** The field for `schema`, by its shape. */
export function SchemaField(props: FieldProps) {
  const schema = resolve(props.root, props.schema);
  const resolved = { ...props, schema };
  if (isSelector(schema)) return <SelectorField {...resolved} />;
  if (Array.isArray(schema.enum)) return <EnumField {...resolved} />;
  const type = schema.type;
  if (type === "string") return <TextField {...resolved} />;
  if (type === "integer" || type === "number") return <NumberField {...resolved} />;
  if (type === "boolean") return <BooleanField {...resolved} />;
  if (type === "array" && isObject(schema.items) && resolve(props.root, schema.items).type === "string") {
    return <LinesField {...resolved} />;
  }
  if (type === "object" && isObject(schema.properties) && Object.keys(schema.properties).length) {
    return <ObjectField {...resolved} />;
  }
  return <JsonField {...resolved} />;
}

function TextField({ name, schema, value, onChange, pointer, problems, required, readOnly, label }: FieldProps) {
  const id = useFieldId(pointer);
  const long = typeof schema.maxLength === "number" && schema.maxLength > 4000 && name !== "text";
  const keepEmpty = schema.minLength === 0;
  const text = typeof value === "string" ? value : value === undefined ? "" : JSON.stringify(value);
  const change = (next: string) => onChange(next === "" && !keepEmpty ? undefined : next);
  return (
    <FieldShell id={id} label={label ?? labelOf(name)} help={describe(schema)} problems={problemsAt(problems, pointer, true)} required={required} pointer={pointer}>
      {(aria) =>
        long ? (
          <textarea id={id} rows={2} value={text} readOnly={readOnly} onChange={(e) => change(e.target.value)} {...aria} />
        ) : (
          <input id={id} type="text" value={text} readOnly={readOnly} onChange={(e) => change(e.target.value)} {...aria} />
        )
      }
    </FieldShell>
  );
}

function NumberField({ name, schema, value, onChange, pointer, problems, required, readOnly, label }: FieldProps) {
  const id = useFieldId(pointer);
  const text = typeof value === "number" ? String(value) : "";
  return (
    <FieldShell id={id} label={label ?? labelOf(name)} help={describe(schema)} problems={problemsAt(problems, pointer, true)} required={required} pointer={pointer}>
      {(aria) => (
        <input
          id={id}
          type="number"
          inputMode="numeric"
          value={text}
          readOnly={readOnly}
          min={typeof schema.minimum === "number" ? schema.minimum : undefined}
          max={typeof schema.maximum === "number" ? schema.maximum : undefined}
          step={schema.type === "integer" ? 1 : "any"}
          placeholder={schema.default !== undefined ? String(schema.default) : undefined}
          onChange={(e) => {
            const raw = e.target.value;
            const parsed = schema.type === "integer" ? parseInt(raw, 10) : parseFloat(raw);
            onChange(raw === "" || Number.isNaN(parsed) ? undefined : parsed);
          }}
          {...aria}
        />
      )}
    </FieldShell>
  );
}

function BooleanField({ name, schema, value, onChange, pointer, problems, readOnly, label }: FieldProps) {
  const id = useFieldId(pointer);
  const fallback = typeof schema.default === "boolean" ? schema.default : false;
  const checked = typeof value === "boolean" ? value : fallback;
  return (
    <FieldShell id={id} label={label ?? labelOf(name)} help={describe(schema)} problems={problemsAt(problems, pointer, true)} pointer={pointer} inline>
      {(aria) => (
        <input
          id={id}
          type="checkbox"
          checked={checked}
          disabled={readOnly}
          // The default is written by leaving the field out: the JSON stays as short as a person writes it.
          onChange={(e) => onChange(e.target.checked === fallback ? undefined : e.target.checked)}
          {...aria}
        />
      )}
    </FieldShell>
  );
}

function EnumField({ name, schema, value, onChange, pointer, problems, required, readOnly, label }: FieldProps) {
  const id = useFieldId(pointer);
  const options = (schema.enum as Json[]).map((option) => String(option));
  const current = value === undefined ? "" : String(value);
  const emptyLabel = schema.default !== undefined ? `(default: ${String(schema.default)})` : required ? "— choose —" : "(none)";
  return (
    <FieldShell id={id} label={label ?? labelOf(name)} help={describe(schema)} problems={problemsAt(problems, pointer, true)} required={required} pointer={pointer}>
      {(aria) => (
        <select id={id} value={current} disabled={readOnly} onChange={(e) => onChange(e.target.value === "" ? undefined : e.target.value)} {...aria}>
          <option value="">{emptyLabel}</option>
          {options.map((option) => (
            <option key={option} value={option}>
              {option}
            </option>
          ))}
          {current && !options.includes(current) && <option value={current}>{current} (not allowed)</option>}
        </select>
      )}
    </FieldShell>
  );
}

function LinesField({ name, schema, value, onChange, pointer, problems, required, readOnly, label }: FieldProps) {
  const id = useFieldId(pointer);
  const lines = Array.isArray(value) ? value.map((v) => (typeof v === "string" ? v : JSON.stringify(v))) : [];
  const [text, setText] = useState(lines.join("\n"));
  const emitted = useRef(lines.join("\n"));
  useEffect(() => {
    const joined = lines.join("\n");
    if (joined !== emitted.current) {
      emitted.current = joined;
      setText(joined);
    }
  });
  return (
    <FieldShell id={id} label={label ?? labelOf(name)} help={`${describe(schema)} One per line.`.trim()} problems={problemsAt(problems, pointer, true)} required={required} pointer={pointer}>
      {(aria) => (
        <textarea
          id={id}
          rows={Math.max(2, lines.length + 1)}
          value={text}
          readOnly={readOnly}
          onChange={(e) => {
            setText(e.target.value);
            const items = e.target.value.split("\n").map((line) => line.trim()).filter(Boolean);
            emitted.current = items.join("\n");
            onChange(items.length ? items : undefined);
          }}
          {...aria}
        />
      )}
    </FieldShell>
  );
}

/** Any JSON value (a request body, a variable's value, headers): a JSON text area. */
function JsonField({ name, schema, value, onChange, pointer, problems, required, readOnly, label }: FieldProps) {
  const id = useFieldId(pointer);
  const shown = value === undefined ? "" : JSON.stringify(value, null, 1);
  const [text, setText] = useState(shown);
  const [error, setError] = useState<string | null>(null);
  const emitted = useRef(shown);
  useEffect(() => {
    if (shown !== emitted.current) {
      emitted.current = shown;
      setText(shown);
      setError(null);
    }
  }, [shown]);
  const local: Problem[] = error ? [{ pointer, message: error, hint: "write JSON: quotes around text, no trailing commas", severity: "error" }] : [];
  return (
    <FieldShell id={id} label={label ?? labelOf(name)} help={`${describe(schema)} As JSON.`.trim()} problems={[...local, ...problemsAt(problems, pointer, true)]} required={required} pointer={pointer}>
      {(aria) => (
        <textarea
          id={id}
          className="mono"
          rows={3}
          value={text}
          readOnly={readOnly}
          onChange={(e) => {
            setText(e.target.value);
            if (e.target.value.trim() === "") {
              setError(null);
              emitted.current = "";
              onChange(undefined);
              return;
            }
            try {
              const parsed = JSON.parse(e.target.value) as Json;
              setError(null);
              emitted.current = JSON.stringify(parsed, null, 1);
              onChange(parsed);
            } catch (exc) {
              setError(`not valid JSON yet: ${(exc as Error).message}`);
            }
          }}
          {...aria}
        />
      )}
    </FieldShell>
  );
}

/** An object with known properties (retry): a group of fields; all empty → the object goes. */
function ObjectField({ root, name, schema, value, onChange, pointer, problems, readOnly, label }: FieldProps) {
  const object = isObject(value) ? value : {};
  const required = (schema.required as string[] | undefined) ?? [];
  const own = problemsAt(problems, pointer);
  return (
    <fieldset className="group" data-pointer={pointer}>
      <legend>{label ?? labelOf(name)}</legend>
      {typeof schema.description === "string" && <p className="help">{schema.description}</p>}
      <ProblemList problems={own} />
      {Object.entries(schema.properties as JsonObject).map(([key, sub]) => (
        <SchemaField
          key={key}
          root={root}
          name={key}
          schema={sub as FieldSchema}
          value={object[key]}
          pointer={`${pointer}/${pointerKey(key)}`}
          problems={problems}
          required={required.includes(key)}
          readOnly={readOnly}
          onChange={(v) => {
            const copy: JsonObject = { ...object };
            if (v === undefined) delete copy[key];
            else copy[key] = v;
            onChange(Object.keys(copy).length ? copy : undefined);
          }}
        />
      ))}
    </fieldset>
  );
}

const TEXT_MODES: [string, string][] = [
  ["text", "is exactly"],
  ["textContains", "contains"],
  ["textMatches", "matches the regex"],
];

function isSelector(schema: FieldSchema): boolean {
  const props = schema.properties;
  return isObject(props) && "textContains" in props && "resourceId" in props;
}

/**
 * A selector: the text with its match mode (exact, contains, regex: text / textContains /
 * textMatches), then resource id, description, class name and index. An element must fit all.
 */
function SelectorField({ root, name, schema, value, onChange, pointer, problems, readOnly, label }: FieldProps) {
  const selector = isObject(value) ? value : {};
  const modeKey = TEXT_MODES.find(([key]) => key in selector)?.[0] ?? "text";
  const id = useFieldId(`${pointer}/mode`);
  const props = schema.properties as JsonObject;
  const set = (key: string, v: Json | undefined) => {
    const copy: JsonObject = { ...selector };
    if (v === undefined) delete copy[key];
    else copy[key] = v;
    onChange(Object.keys(copy).length ? copy : undefined);
  };
  const textValue = selector[modeKey];
  return (
    <fieldset className="group selector" data-pointer={pointer}>
      <legend>{label ?? labelOf(name)}</legend>
      {typeof schema.description === "string" && <p className="help">{schema.description}</p>}
      <ProblemList problems={problemsAt(problems, pointer)} />
      <div className="field">
        <label htmlFor={id}>Text match</label>
        <select
          id={id}
          value={modeKey}
          disabled={readOnly}
          onChange={(e) => {
            const copy: JsonObject = { ...selector };
            for (const [key] of TEXT_MODES) delete copy[key];
            if (textValue !== undefined) copy[e.target.value] = textValue;
            onChange(Object.keys(copy).length ? copy : undefined);
          }}
        >
          {TEXT_MODES.map(([key, words]) => (
            <option key={key} value={key}>
              {words} ({key})
            </option>
          ))}
        </select>
      </div>
      <SchemaField
        root={root}
        name={modeKey}
        label="Text"
        schema={props[modeKey] as FieldSchema}
        value={textValue}
        pointer={`${pointer}/${modeKey}`}
        problems={problems}
        readOnly={readOnly}
        onChange={(v) => set(modeKey, v)}
      />
      {["resourceId", "description", "className", "index"].map((key) => (
        <SchemaField
          key={key}
          root={root}
          name={key}
          schema={props[key] as FieldSchema}
          value={selector[key]}
          pointer={`${pointer}/${key}`}
          problems={problems}
          readOnly={readOnly}
          onChange={(v) => set(key, v)}
        />
      ))}
    </fieldset>
  );
}

/** The `required` key of each `oneOf` branch when every branch requires exactly one key. */
export function exclusiveKeys(schema: FieldSchema): string[] | null {
  const branches = schema.oneOf;
  if (!Array.isArray(branches) || !branches.length) return null;
  const keys: string[] = [];
  for (const branch of branches) {
    const required = isObject(branch) ? branch.required : undefined;
    if (!Array.isArray(required) || required.length !== 1 || typeof required[0] !== "string") return null;
    keys.push(required[0]);
  }
  return keys;
}
