// Every problem of the draft, errors first; choosing one selects the step it is on.

import { nodeIndexOf } from "../model/problems";
import type { PanelProps } from "./registry";

export function ProblemsPanel({ ctx }: PanelProps) {
  const { problems, definition, select } = ctx;
  if (!problems.length) return <p className="muted ok-line">No problems: the draft can be saved.</p>;
  return (
    <ul className="problem-list">
      {problems.map((problem, i) => {
        const node = definition.nodes[nodeIndexOf(problem.pointer)];
        return (
          <li key={i} className={problem.severity}>
            <button type="button" className="link" onClick={() => select(node ? node.id : null)}>
              <span className="severity">{problem.severity}</span> <code>{problem.pointer || "/"}</code>
              {node && <> (step {node.id})</>}
            </button>{" "}
            {problem.message}
            {problem.hint && <div className="hint">{problem.hint}</div>}
          </li>
        );
      })}
    </ul>
  );
}
