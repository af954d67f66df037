// The form of the selected node: id and label, the kind's params (generated from its schema),
// where each outcome leads, and retry / timeout / optional / enabled.

import { useEffect, useState } from "react";

import { isObject, nextMap, withField } from "../model/draft";
import { pointerKey, problemsAt } from "../model/problems";
import type { FieldSchema, KindInfo, WorkflowSchema } from "../model/schema";
import type { Definition, Json, JsonObject, Problem, WorkflowNode } from "../types";
import { exclusiveKeys, FieldShell, labelOf, ProblemList, SchemaField } from "./fields";

export interface NodeFormProps {
  schema: WorkflowSchema;
  definition: Definition;
  node: WorkflowNode;
  index: number;
  problems: Problem[];
  readOnly: boolean;
  /** A change of the node; `key` groups the keystrokes of one field into one undo step. */
  onNodeChange: (node: WorkflowNode, key: string) => void;
  onNext: (outcome: string, target: string | undefined) => void;
  onRename: (to: string) => void;
  onDelete: () => void;
  onMakeStart: () => void;
}

export function NodeForm(props: NodeFormProps) {
  const { schema, definition, node, index, problems, readOnly, onNodeChange } = props;
  const info: KindInfo | undefined = schema.byKind.get(node.kind);
  const base = `/nodes/${index}`;
  const params = isObject(node.params) ? node.params : {};
  const setParams = (value: JsonObject, key: string) => onNodeChange(withField(node, "params", value), key);
  return (
    <form className="node-form" aria-label={`Step ${node.id}`} onSubmit={(e) => e.preventDefault()}>
      <div className="form-head">
        <h2>
          Step <code>{node.id}</code>
        </h2>
        <p className="kind-line">
          <code>{node.kind}</code> {info ? `— ${info.help}` : "— not a node kind phoneflow knows"}
        </p>
        <ProblemList problems={problemsAt(problems, base).concat(problemsAt(problems, `${base}/kind`))} />
      </div>
      <fieldset disabled={readOnly} className="plain">
        <IdField node={node} pattern={schema.nodeIdPattern} taken={definition.nodes.map((n) => n.id)} problems={problemsAt(problems, `${base}/id`)} onRename={props.onRename} pointer={`${base}/id`} />
        {info && (
          <ParamsFields schema={schema} info={info} params={params} pointer={`${base}/params`} problems={problems} readOnly={readOnly} onChange={setParams} />
        )}
        <NextFields {...props} outcomes={info?.outcomes ?? ["ok", "failed"]} pointer={`${base}/next`} />
        {schema.nodeFields.map(([name, fieldSchema]) => (
          <SchemaField
            key={name}
            root={schema.root}
            name={name}
            schema={fieldSchema}
            value={node[name] as Json | undefined}
            pointer={`${base}/${pointerKey(name)}`}
            problems={problems}
            readOnly={readOnly}
            onChange={(value) => onNodeChange(withField(node, name, value), `${base}/${name}`)}
          />
        ))}
      </fieldset>
      {!readOnly && (
        <div className="form-actions">
          {definition.start !== node.id && (
            <button type="button" onClick={props.onMakeStart}>
              Make this the start
            </button>
          )}
          <button type="button" className="danger" onClick={props.onDelete}>
            Delete step
          </button>
        </div>
      )}
    </form>
  );
}

/** The id, applied when the field is left (or Enter): every edge that names it follows. */
function IdField(props: { node: WorkflowNode; pattern: RegExp; taken: string[]; problems: Problem[]; pointer: string; onRename: (to: string) => void }) {
  const { node, pattern, taken, problems, pointer, onRename } = props;
  const [text, setText] = useState(node.id);
  useEffect(() => setText(node.id), [node.id]);
  let local: string | null = null;
  if (text !== node.id) {
    if (!pattern.test(text)) local = "letters, digits, '_' and '-', starting with a letter or '_' (at most 64)";
    else if (taken.includes(text)) local = `another step is already called '${text}'`;
  }
  const apply = () => {
    if (text !== node.id && local === null) onRename(text);
    else setText(node.id);
  };
  const shown: Problem[] = local ? [{ pointer, message: local, hint: "the id stays as it was until this is fixed", severity: "error" }] : [];
  return (
    <FieldShell id={`node-id-${node.id}`} label="Id" help="Names the step in edges, templates ({{nodes.ID.output}}) and traces." problems={[...shown, ...problems]} pointer={pointer} required>
      {(aria) => (
        <input
          id={`node-id-${node.id}`}
          type="text"
          value={text}
          onChange={(e) => setText(e.target.value)}
          onBlur={apply}
          onKeyDown={(e) => {
            if (e.key === "Enter") {
              e.preventDefault();
              apply();
            }
          }}
          {...aria}
        />
      )}
    </FieldShell>
  );
}

/** The kind's params; a `oneOf` of single required keys (control.if) becomes a choice of mode. */
function ParamsFields(props: {
  schema: WorkflowSchema;
  info: KindInfo;
  params: JsonObject;
  pointer: string;
  problems: Problem[];
  readOnly: boolean;
  onChange: (params: JsonObject, key: string) => void;
}) {
  const { schema, info, params, pointer, problems, readOnly, onChange } = props;
  const properties = (isObject(info.params.properties) ? info.params.properties : {}) as Record<string, FieldSchema>;
  const required = (info.params.required as string[] | undefined) ?? [];
  const exclusive = exclusiveKeys(info.params);
  const chosen = exclusive ? exclusive.find((key) => key in params) ?? exclusive[0] : null;
  const names = Object.keys(properties).filter((name) => !exclusive || !exclusive.includes(name) || name === chosen);
  if (!names.length && !exclusive) return <ProblemList problems={problemsAt(problems, pointer, true)} />;
  return (
    <fieldset className="group" data-pointer={pointer}>
      <legend>Parameters</legend>
      <ProblemList problems={problemsAt(problems, pointer)} />
      {exclusive && chosen && (
        <FieldShell id={`mode-${pointer}`} label="Condition" help={String(info.params.description ?? "")} problems={[]} pointer={`${pointer}#mode`}>
          {(aria) => (
            <select
              id={`mode-${pointer}`}
              value={chosen}
              onChange={(e) => {
                const copy: JsonObject = { ...params };
                const carried = copy[chosen];
                for (const key of exclusive) delete copy[key];
                if (carried !== undefined) copy[e.target.value] = carried;
                onChange(copy, `${pointer}#mode`);
              }}
              {...aria}
            >
              {exclusive.map((key) => (
                <option key={key} value={key}>
                  {labelOf(key)}
                </option>
              ))}
            </select>
          )}
        </FieldShell>
      )}
      {names.map((name) => (
        <SchemaField
          key={name}
          root={schema.root}
          name={name}
          schema={properties[name]}
          value={params[name]}
          pointer={`${pointer}/${pointerKey(name)}`}
          problems={problems}
          required={required.includes(name) || name === chosen}
          readOnly={readOnly}
          onChange={(value) => onChange(withField(params, name, value), `${pointer}/${name}`)}
        />
      ))}
    </fieldset>
  );
}

/** Where each outcome goes: pick the target step, or "end of the run". */
function NextFields(props: NodeFormProps & { outcomes: string[]; pointer: string }) {
  const { definition, node, outcomes, pointer, problems, onNext } = props;
  const map = nextMap(node, outcomes);
  if (!outcomes.length) {
    return <p className="help">This step ends the run: it has no next step.</p>;
  }
  const others = definition.nodes.map((n) => n.id);
  return (
    <fieldset className="group" data-pointer={pointer}>
      <legend>Next step</legend>
      <ProblemList problems={problemsAt(problems, pointer)} />
      {outcomes.map((outcome, i) => {
        const target = map[outcome];
        const fieldPointer = typeof node.next === "string" && i === 0 ? pointer : `${pointer}/${outcome}`;
        const id = `next-${node.id}-${outcome}`;
        return (
          <FieldShell
            key={outcome}
            id={id}
            label={`On ${outcome}`}
            help={i === 0 ? "" : outcome === "failed" ? "Unset: a failure ends the run failed." : ""}
            problems={problemsAt(problems, fieldPointer)}
            pointer={fieldPointer}
          >
            {(aria) => (
              <select id={id} value={target ?? ""} onChange={(e) => onNext(outcome, e.target.value || undefined)} {...aria}>
                <option value="">— end of the run —</option>
                {others.map((other) => (
                  <option key={other} value={other}>
                    {other}
                  </option>
                ))}
                {target && !others.includes(target) && <option value={target}>{target} (missing)</option>}
              </select>
            )}
          </FieldShell>
        );
      })}
    </fieldset>
  );
}
