// A phone's screenshot with its window hierarchy over it: hovering outlines the element under the
// pointer, clicking picks it (or, when `onPoint` is given, hands the point on: the recorder clicks
// the phone there). Used by the builder's Inspect panel and by the run page's failure context.

import { useMemo, useState, type MouseEvent } from "react";

import type { Inspection, ScreenElement } from "./types";
import "./inspect.css";

/** The smallest visible element under the point (the deepest on a tie): what a finger would hit. */
export function elementAt(elements: ScreenElement[], x: number, y: number): ScreenElement | null {
  let best: ScreenElement | null = null;
  let bestArea = Infinity;
  for (const element of elements) {
    if (!element.visible) continue;
    const [left, top, right, bottom] = element.bounds;
    if (x < left || x >= right || y < top || y >= bottom) continue;
    const area = (right - left) * (bottom - top);
    if (area < bestArea || (area === bestArea && best !== null && element.depth > best.depth)) {
      best = element;
      bestArea = area;
    }
  }
  return best;
}

/** A short name for an element: its text, description, id or class. */
export function elementName(element: ScreenElement): string {
  const id = element.resourceId.split(":id/").pop() ?? "";
  return element.text.trim() || element.contentDesc.trim() || id || element.className.split(".").pop() || "element";
}

interface Props {
  image: string;
  inspection: Inspection;
  selectedId: number | null;
  onSelect: (element: ScreenElement | null) => void;
  /** When set, a click is handed on (screen pixels and the element there) instead of selecting. */
  onPoint?: (x: number, y: number, element: ScreenElement | null) => void;
  busy?: boolean;
  label: string;
}

function Outline({ element, className }: { element: ScreenElement; className: string }) {
  const [left, top, right, bottom] = element.bounds;
  return <rect className={className} x={left} y={top} width={right - left} height={bottom - top} />;
}

export function ScreenOverlay({ image, inspection, selectedId, onSelect, onPoint, busy, label }: Props) {
  const [hovered, setHovered] = useState<ScreenElement | null>(null);
  const screen = inspection.screen ?? { width: 1080, height: 2340 };
  const byId = useMemo(() => new Map(inspection.elements.map((e) => [e.id, e])), [inspection]);
  const selected = selectedId === null ? undefined : byId.get(selectedId);

  const point = (event: MouseEvent<SVGSVGElement>) => {
    const box = event.currentTarget.getBoundingClientRect();
    const x = Math.round(((event.clientX - box.left) * screen.width) / box.width);
    const y = Math.round(((event.clientY - box.top) * screen.height) / box.height);
    return { x, y, element: elementAt(inspection.elements, x, y) };
  };

  return (
    <div className={`screen-overlay${busy ? " busy" : ""}${onPoint ? " recording" : ""}`}>
      <img src={image} alt={label} draggable={false} />
      <svg
        viewBox={`0 0 ${screen.width} ${screen.height}`}
        preserveAspectRatio="none"
        aria-hidden="true"
        data-testid="screen-overlay"
        onMouseMove={(event) => setHovered(point(event).element)}
        onMouseLeave={() => setHovered(null)}
        onClick={(event) => {
          if (busy) return;
          const { x, y, element } = point(event);
          if (onPoint) onPoint(x, y, element);
          else onSelect(element);
        }}
      >
        {selected && <Outline element={selected} className="outline selected" />}
        {hovered && hovered !== selected && <Outline element={hovered} className="outline hovered" />}
      </svg>
      {hovered && <div className="hover-name" role="status">{elementName(hovered)}</div>}
    </div>
  );
}
