// The run page's second entry: a failed step's screenshot with its window hierarchy over it (the
// inspector's overlay), in place of the raw XML link. Each `.hierarchy-overlay` element names the
// screenshot and the hierarchy (dashboard artifact URLs); the hierarchy is read by the public API
// (POST /api/v1/inspect/hierarchy), so the selectors are the ones the builder's Inspect panel shows.
// The page's live updates swap the run's body in: new elements are mounted as they appear.

import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";

import { ApiError, configureApi } from "./api";
import { inspectApi } from "./inspect/commands";
import { ElementDetails } from "./inspect/ElementDetails";
import { ScreenOverlay } from "./inspect/ScreenOverlay";
import type { Inspection } from "./inspect/types";

interface ViewerProps {
  screenshot: string;
  hierarchy: string;
  label: string;
}

function HierarchyViewer({ screenshot, hierarchy, label }: ViewerProps) {
  const [inspection, setInspection] = useState<Inspection | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [selectedId, setSelectedId] = useState<number | null>(null);

  useEffect(() => {
    fetch(hierarchy, { credentials: "same-origin" })
      .then((answer) => {
        if (!answer.ok) throw new ApiError(answer.status, `the window hierarchy could not be read (HTTP ${answer.status})`, []);
        return answer.text();
      })
      .then((xml) => inspectApi.hierarchy(xml))
      .then(setInspection)
      .catch((error: unknown) => setProblem(error instanceof Error ? error.message : String(error)));
  }, [hierarchy]);

  const selected = inspection?.elements.find((e) => e.id === selectedId) ?? null;
  return (
    <div className="hierarchy-viewer">
      {inspection ? (
        <ScreenOverlay
          image={screenshot}
          inspection={inspection}
          selectedId={selectedId}
          onSelect={(element) => setSelectedId(element ? element.id : null)}
          label={label}
        />
      ) : (
        <img className="shot" src={screenshot} alt={label} />
      )}
      <div className="element-details-column">
        {problem && <p className="inspect-status error">{problem}</p>}
        {selected ? (
          <ElementDetails element={selected} />
        ) : (
          inspection && <p className="muted">Hover the screen to see its elements; click one to see the selectors that find it.</p>
        )}
        <p>
          <a className="button small-button" href={hierarchy} target="_blank" rel="noreferrer">
            Window hierarchy
          </a>
        </p>
      </div>
    </div>
  );
}

function mountAll(): void {
  document.querySelectorAll<HTMLElement>(".hierarchy-overlay:not([data-mounted])").forEach((element) => {
    const { screenshot, hierarchy, csrf, label } = element.dataset;
    if (!screenshot || !hierarchy) return;
    element.dataset.mounted = "true";
    configureApi(csrf ?? "");
    createRoot(element).render(
      <StrictMode>
        <HierarchyViewer screenshot={screenshot} hierarchy={hierarchy} label={label ?? "the phone's screen"} />
      </StrictMode>,
    );
  });
}

mountAll();
new MutationObserver(mountAll).observe(document.body, { childList: true, subtree: true });
