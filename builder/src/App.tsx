// Loads what the page names (the schema; the workflow and version when editing or viewing),
// then shows the editor; a failure to load says what went wrong and what to do.

import { useEffect, useState } from "react";

import { api } from "./api";
import { Editor, type Saved } from "./Editor";
import { emptyDefinition } from "./model/draft";
import { readSchema, type WorkflowSchema } from "./model/schema";
import type { Definition, MountInfo } from "./types";

interface Loaded {
  schema: WorkflowSchema;
  definition: Definition;
  saved: Saved;
}

async function load(mount: MountInfo): Promise<Loaded> {
  if (mount.mode === "new" || !mount.workflowId || !mount.versionId) {
    const saved: Saved = { workflowId: null, versionId: null, number: null, definition: null, publishedVersionId: null };
    return { schema: readSchema(await api.schema()), definition: emptyDefinition(), saved };
  }
  // The three calls at once: first paint of the graph waits for the slowest, not for their sum.
  const [rawSchema, workflow, version] = await Promise.all([
    api.schema(),
    api.workflow(mount.workflowId),
    api.version(mount.workflowId, mount.versionId),
  ]);
  const schema = readSchema(rawSchema);
  const definition = version.definition;
  // A draft from an old version is a change until saved: it becomes a new version, never the old one.
  const fromOld = mount.mode === "edit" && version.id !== workflow.latestVersion.id;
  const saved: Saved = {
    workflowId: workflow.id,
    versionId: version.id,
    number: version.number,
    definition: fromOld ? null : definition,
    publishedVersionId: workflow.publishedVersionId,
  };
  return { schema, definition, saved };
}

export function App({ mount }: { mount: MountInfo }) {
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    load(mount).then(setLoaded, (exc: Error) => setError(exc.message));
  }, [mount]);
  if (error) {
    return (
      <div className="flash error" role="alert">
        The builder could not load: {error}
      </div>
    );
  }
  if (!loaded) return <p className="muted" role="status">Loading the builder…</p>;
  return <Editor schema={loaded.schema} initial={loaded.definition} saved={loaded.saved} readOnly={mount.mode === "view"} />;
}
