// The builder island's entry: mounts on #builder, whose data-* attributes the page sets
// (server/dashboard/templates/builder.html).

import "@xyflow/react/dist/style.css";
import "./builder.css";

import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { configureApi } from "./api";
import { App } from "./App";
import type { MountInfo } from "./types";

const element = document.getElementById("builder");
if (element) {
  const data = element.dataset;
  const mount: MountInfo = {
    mode: data.mode === "edit" || data.mode === "view" ? data.mode : "new",
    workflowId: data.workflowId || undefined,
    versionId: data.versionId || undefined,
    csrf: data.csrf ?? "",
  };
  configureApi(mount.csrf);
  createRoot(element).render(
    <StrictMode>
      <App mount={mount} />
    </StrictMode>,
  );
}
