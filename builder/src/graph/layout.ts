// Automatic layout: dagre's layered drawing, top to bottom. Back edges (loops) are kept and drawn
// upwards; the canvas marks them so that a loop is visible at a glance.

import dagre from "@dagrejs/dagre";

import { nextMap } from "../model/draft";
import type { Definition } from "../types";

export const NODE_WIDTH = 220;
export const NODE_HEIGHT = 68;

export interface LaidOutEdge {
  id: string;
  source: string;
  target: string;
  outcome: string;
  loop: boolean;
}

export interface Layout {
  positions: Map<string, { x: number; y: number }>;
  edges: LaidOutEdge[];
}

export function layout(definition: Definition, outcomesOf: (kind: string) => string[]): Layout {
  const graph = new dagre.graphlib.Graph({ multigraph: true });
  graph.setGraph({ rankdir: "TB", nodesep: 36, ranksep: 64, marginx: 16, marginy: 16 });
  graph.setDefaultEdgeLabel(() => ({}));
  const ids = new Set<string>();
  for (const node of definition.nodes) {
    if (ids.has(node.id)) continue; // a duplicate id is a problem the validator reports; draw it once
    ids.add(node.id);
    graph.setNode(node.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  }
  const edges: LaidOutEdge[] = [];
  for (const node of definition.nodes) {
    for (const [outcome, target] of Object.entries(nextMap(node, outcomesOf(node.kind)))) {
      if (!ids.has(target)) continue; // a dangling target: the validator says so on the node
      const id = `${node.id}:${outcome}`;
      edges.push({ id, source: node.id, target, outcome, loop: false });
      graph.setEdge(node.id, target, { label: outcome, width: 40, height: 16 }, id);
    }
  }
  dagre.layout(graph);
  const positions = new Map<string, { x: number; y: number }>();
  for (const id of ids) {
    const placed = graph.node(id);
    positions.set(id, { x: placed.x - NODE_WIDTH / 2, y: placed.y - NODE_HEIGHT / 2 });
  }
  for (const edge of edges) {
    const from = positions.get(edge.source);
    const to = positions.get(edge.target);
    edge.loop = !!from && !!to && to.y <= from.y;
  }
  return { positions, edges };
}
