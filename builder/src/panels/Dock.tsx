// The tab strip of dock panels (registry.tsx), keyboard-operable as ARIA tabs.

import { useState, type KeyboardEvent } from "react";

import { DOCK_PANELS, type EditorContext } from "./registry";

export function Dock({ ctx }: { ctx: EditorContext }) {
  const [active, setActiveId] = useState(DOCK_PANELS[0].id);
  // Panels shown at least once: they stay mounted (hidden when another is shown), so a panel
  // keeps its state (a simulation's result, say); one never opened costs nothing.
  const [opened, setOpened] = useState<ReadonlySet<string>>(() => new Set([DOCK_PANELS[0].id]));
  const setActive = (id: string) => {
    setActiveId(id);
    if (!opened.has(id)) setOpened(new Set([...opened, id]));
  };
  const panel = DOCK_PANELS.find((p) => p.id === active) ?? DOCK_PANELS[0];
  const move = (event: KeyboardEvent, index: number) => {
    const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
    if (!step) return;
    const next = DOCK_PANELS[(index + step + DOCK_PANELS.length) % DOCK_PANELS.length];
    setActive(next.id);
    document.getElementById(`dock-tab-${next.id}`)?.focus();
  };
  return (
    <section className="dock" aria-label="Panels">
      <div role="tablist" aria-label="Panels" className="tabs">
        {DOCK_PANELS.map((p, i) => {
          const badge = p.badge?.(ctx);
          return (
            <button
              key={p.id}
              id={`dock-tab-${p.id}`}
              role="tab"
              type="button"
              aria-selected={p.id === panel.id}
              aria-controls={`dock-panel-${p.id}`}
              tabIndex={p.id === panel.id ? 0 : -1}
              onClick={() => setActive(p.id)}
              onKeyDown={(e) => move(e, i)}
            >
              {p.title}
              {badge !== null && badge !== undefined && <span className="tab-badge">{badge}</span>}
            </button>
          );
        })}
      </div>
      {DOCK_PANELS.map((p) => (
        <div key={p.id} role="tabpanel" id={`dock-panel-${p.id}`} aria-labelledby={`dock-tab-${p.id}`} className="dock-body" hidden={p.id !== panel.id}>
          {opened.has(p.id) && p.render({ ctx })}
        </div>
      ))}
    </section>
  );
}
