// The workflow's own fields (name, description, apps, time cap, screens per step, start) and its inputs table.

import { isObject, withField } from "../model/draft";
import { problemsAt } from "../model/problems";
import type { WorkflowSchema } from "../model/schema";
import type { Definition, Json, JsonObject, Problem } from "../types";
import { FieldShell, ProblemList, SchemaField } from "./fields";

export interface WorkflowFormProps {
  schema: WorkflowSchema;
  definition: Definition;
  problems: Problem[];
  readOnly: boolean;
  onChange: (definition: Definition, key: string) => void;
}

export function WorkflowForm({ schema, definition, problems, readOnly, onChange }: WorkflowFormProps) {
  const set = (name: string) => (value: Json | undefined) => onChange(withField(definition, name, value), `/${name}`);
  return (
    <form className="workflow-form" aria-label="Workflow settings" onSubmit={(e) => e.preventDefault()}>
      <h2>Workflow</h2>
      <ProblemList problems={problemsAt(problems, "")} />
      <fieldset disabled={readOnly} className="plain">
        {["name", "description", "targetPackages", "timeoutS", "frames"].map((name) => (
          <SchemaField
            key={name}
            root={schema.root}
            name={name}
            schema={schema.topFields[name] ?? {}}
            value={definition[name] as Json | undefined}
            pointer={`/${name}`}
            problems={problems}
            required={name === "name"}
            readOnly={readOnly}
            onChange={set(name)}
          />
        ))}
        <FieldShell id="wf-start" label="Start" help="The step a run begins with." problems={problemsAt(problems, "/start")} pointer="/start" required>
          {(aria) => (
            <select id="wf-start" value={typeof definition.start === "string" ? definition.start : ""} onChange={(e) => set("start")(e.target.value || undefined)} {...aria}>
              <option value="">— choose —</option>
              {definition.nodes.map((node) => (
                <option key={node.id} value={node.id}>
                  {node.id}
                </option>
              ))}
            </select>
          )}
        </FieldShell>
        <InputsTable definition={definition} problems={problems} onChange={onChange} />
      </fieldset>
    </form>
  );
}

const INPUT_TYPES = ["string", "integer", "number", "boolean"];

/**
 * The run's inputs as a table of fields (name, type, required, description), written as the
 * `inputs` JSON Schema; other keywords of a field's schema (minLength, enum, …) are kept.
 */
function InputsTable({ definition, problems, onChange }: Omit<WorkflowFormProps, "schema" | "readOnly">) {
  const inputs = isObject(definition.inputs) ? definition.inputs : {};
  const properties = isObject(inputs.properties) ? inputs.properties : {};
  const required = Array.isArray(inputs.required) ? inputs.required.filter((r): r is string => typeof r === "string") : [];
  const rows = Object.entries(properties).map(([name, field]) => ({ name, field: isObject(field) ? field : {} }));
  const write = (nextRows: { name: string; field: JsonObject }[], nextRequired: string[], key: string) => {
    const nextInputs: JsonObject = {
      ...inputs,
      type: "object",
      properties: Object.fromEntries(nextRows.map((row) => [row.name, row.field])),
    };
    if (nextRequired.length) nextInputs.required = nextRequired;
    else delete nextInputs.required;
    onChange(withField(definition, "inputs", nextRows.length || nextRequired.length ? nextInputs : undefined), key);
  };
  const setRow = (i: number, change: (row: { name: string; field: JsonObject }) => { name: string; field: JsonObject }, key: string) => {
    const nextRows = rows.map((row, j) => (j === i ? change(row) : row));
    const renamed = rows[i].name !== nextRows[i].name;
    write(nextRows, renamed ? required.map((r) => (r === rows[i].name ? nextRows[i].name : r)) : required, key);
  };
  const freeName = () => {
    for (let n = 1; ; n++) if (!(`input${n}` in properties)) return `input${n}`;
  };
  return (
    <fieldset className="group inputs-table" data-pointer="/inputs">
      <legend>Inputs</legend>
      <p className="help">What a run is given (templates read them as {"{{inputs.NAME}}"}); checked before the first step.</p>
      <ProblemList problems={problemsAt(problems, "/inputs", true)} />
      {rows.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Type</th>
              <th scope="col">Required</th>
              <th scope="col">Description</th>
              <th scope="col">
                <span className="sr-only">Remove</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row, i) => (
              <tr key={i}>
                <td>
                  <input
                    aria-label={`Name of input ${i + 1}`}
                    value={row.name}
                    onChange={(e) => setRow(i, (r) => ({ ...r, name: e.target.value }), `/inputs/${i}/name`)}
                  />
                </td>
                <td>
                  <select
                    aria-label={`Type of input ${row.name}`}
                    value={typeof row.field.type === "string" ? row.field.type : ""}
                    onChange={(e) => setRow(i, (r) => ({ ...r, field: withField(r.field, "type", e.target.value || undefined) }), `/inputs/${i}/type`)}
                  >
                    <option value="">any</option>
                    {INPUT_TYPES.map((t) => (
                      <option key={t} value={t}>
                        {t}
                      </option>
                    ))}
                  </select>
                </td>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Input ${row.name} is required`}
                    checked={required.includes(row.name)}
                    onChange={(e) =>
                      write(rows, e.target.checked ? [...required, row.name] : required.filter((r) => r !== row.name), `/inputs/${i}/required`)
                    }
                  />
                </td>
                <td>
                  <input
                    aria-label={`Description of input ${row.name}`}
                    value={typeof row.field.description === "string" ? row.field.description : ""}
                    onChange={(e) => setRow(i, (r) => ({ ...r, field: withField(r.field, "description", e.target.value || undefined) }), `/inputs/${i}/description`)}
                  />
                </td>
                <td>
                  <button
                    type="button"
                    className="small"
                    aria-label={`Remove input ${row.name}`}
                    onClick={() => write(rows.filter((_, j) => j !== i), required.filter((r) => r !== row.name), `/inputs/remove`)}
                  >
                    ✕
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <button type="button" className="small" onClick={() => write([...rows, { name: freeName(), field: { type: "string" } }], required, "/inputs/add")}>
        Add an input
      </button>
    </fieldset>
  );
}
