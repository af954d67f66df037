// The workflow drawn as a graph: one box per node (with `data-node-id`), one labelled edge per
// outcome, laid out automatically. Clicking (or Enter on) a node selects it; dragging from an
// outcome's handle to another node connects that outcome.

import {
  Background,
  Controls,
  Handle,
  MarkerType,
  Position,
  ReactFlow,
  useReactFlow,
  type Connection,
  type Edge,
  type Node,
  type NodeChange,
  type NodeProps,
} from "@xyflow/react";
import { memo, useEffect, useMemo } from "react";

import type { Definition, Problem } from "../types";
import { layout, NODE_HEIGHT, NODE_WIDTH } from "./layout";

export interface StepData extends Record<string, unknown> {
  id: string;
  kind: string;
  label: string;
  outcomes: string[];
  start: boolean;
  disabled: boolean;
  problems: Problem[];
}

type StepNode = Node<StepData, "step">;

const StepBox = memo(function StepBox({ data, selected }: NodeProps<StepNode>) {
  const errors = data.problems.filter((p) => p.severity === "error");
  const warnings = data.problems.length - errors.length;
  const state = errors.length ? "has-errors" : warnings ? "has-warnings" : "";
  const summary = data.problems.map((p) => `${p.severity}: ${p.message}`).join("\n");
  return (
    <div
      className={`pf-step ${state} ${selected ? "selected" : ""} ${data.disabled ? "disabled" : ""}`}
      data-node-id={data.id}
      data-kind={data.kind}
      title={summary || undefined}
    >
      <Handle type="target" position={Position.Top} />
      <div className="pf-step-kind">
        {data.start && <span className="start-mark" title="start">▶ </span>}
        {data.kind}
      </div>
      <div className="pf-step-title">{data.label}</div>
      {data.problems.length > 0 && (
        <span className={`pf-step-badge ${errors.length ? "error" : "warning"}`} role="img" aria-label={`${data.problems.length} problems`}>
          {errors.length || warnings}
        </span>
      )}
      {data.outcomes.map((outcome, i) => (
        <Handle
          key={outcome}
          id={outcome}
          type="source"
          position={Position.Bottom}
          style={{ left: `${((i + 1) * 100) / (data.outcomes.length + 1)}%` }}
          title={`${outcome}: drag to the next step`}
        />
      ))}
    </div>
  );
});

const nodeTypes = { step: StepBox };

export interface CanvasProps {
  definition: Definition;
  problems: Map<string, Problem[]>;
  selectedId: string | null;
  outcomesOf: (kind: string) => string[];
  onSelect: (id: string | null) => void;
  onConnect?: (source: string, outcome: string, target: string) => void;
  readOnly?: boolean;
}

export function Canvas({ definition, problems, selectedId, outcomesOf, onSelect, onConnect, readOnly }: CanvasProps) {
  const laidOut = useMemo(() => layout(definition, outcomesOf), [definition, outcomesOf]);
  const nodes = useMemo<StepNode[]>(() => {
    const seen = new Set<string>();
    const result: StepNode[] = [];
    for (const node of definition.nodes) {
      if (seen.has(node.id)) continue;
      seen.add(node.id);
      const label = typeof node.label === "string" && node.label ? node.label : node.id;
      result.push({
        id: node.id,
        type: "step",
        position: laidOut.positions.get(node.id) ?? { x: 0, y: 0 },
        width: NODE_WIDTH,
        height: NODE_HEIGHT,
        selected: node.id === selectedId,
        ariaLabel: `step ${node.id}, ${node.kind}${problems.get(node.id)?.length ? ", has problems" : ""}`,
        data: {
          id: node.id,
          kind: node.kind,
          label,
          outcomes: outcomesOf(node.kind),
          start: definition.start === node.id,
          disabled: node.enabled === false,
          problems: problems.get(node.id) ?? [],
        },
      });
    }
    return result;
  }, [definition, laidOut, selectedId, problems, outcomesOf]);
  const edges = useMemo<Edge[]>(
    () =>
      laidOut.edges.map((edge) => ({
        id: edge.id,
        source: edge.source,
        target: edge.target,
        sourceHandle: edge.outcome,
        label: edge.outcome,
        className: `outcome-${edge.outcome} ${edge.loop ? "loop" : ""}`,
        markerEnd: { type: MarkerType.ArrowClosed },
        animated: edge.loop,
        data: { outcome: edge.outcome },
      })),
    [laidOut],
  );
  return (
    <ReactFlow
      nodes={nodes}
      edges={edges}
      nodeTypes={nodeTypes}
      nodesDraggable={false}
      nodesConnectable={!readOnly}
      edgesFocusable={false}
      deleteKeyCode={null}
      fitView
      minZoom={0.2}
      proOptions={{ hideAttribution: true }}
      onNodesChange={(changes: NodeChange<StepNode>[]) => {
        for (const change of changes) {
          if (change.type === "select" && change.selected) onSelect(change.id);
        }
      }}
      onNodeClick={(_event, node) => onSelect(node.id)}
      onPaneClick={() => onSelect(null)}
      onConnect={(connection: Connection) => {
        if (onConnect && connection.sourceHandle) onConnect(connection.source, connection.sourceHandle, connection.target);
      }}
    >
      <FitOnGrowth count={nodes.length} />
      <Background gap={24} />
      <Controls showInteractive={false} />
    </ReactFlow>
  );
}

/** Fits the view again when nodes are added or removed (not on every edit of a field). */
function FitOnGrowth({ count }: { count: number }) {
  const flow = useReactFlow();
  useEffect(() => {
    const timer = window.setTimeout(() => void flow.fitView({ duration: 0, maxZoom: 1.2 }), 0);
    return () => window.clearTimeout(timer);
  }, [count, flow]);
  return null;
}
