// The recorder's controls: which of the account's app models to record into (or a new one), start
// and stop, and the model recorded so far (the Simulate panel runs drafts on saved models).

import { useEffect, useId, useState } from "react";

import { ApiError } from "../api";
import { inspectApi } from "./commands";
import type { AppModelRead, AppModelSummary } from "./types";

interface Props {
  recording: AppModelRead | null;
  busy: boolean;
  onStart: (model: AppModelRead) => void;
  onStop: () => void;
  onError: (text: string) => void;
}

const NEW = "";

export function RecordControls({ recording, busy, onStart, onStop, onError }: Props) {
  const ids = useId();
  const [models, setModels] = useState<AppModelSummary[]>([]);
  const [choice, setChoice] = useState(NEW);
  const [name, setName] = useState("My app");

  useEffect(() => {
    inspectApi
      .appModels()
      .then(setModels)
      .catch((error: unknown) => onError(error instanceof Error ? error.message : String(error)));
  }, [recording]); // refreshed when a recording starts or stops (onError changes every render)

  const start = async () => {
    try {
      if (choice === NEW) onStart(await inspectApi.createAppModel(name.trim() || "My app"));
      else onStart({ ...(models.find((m) => m.id === choice) as AppModelSummary), model: {} });
    } catch (error) {
      onError(error instanceof ApiError ? error.message : String(error));
    }
  };

  if (recording) {
    return (
      <div className="record-bar recording-on">
        <span className="record-dot" aria-hidden="true" /> Recording into <strong>{recording.name}</strong>:{" "}
        {recording.screens} screen{recording.screens === 1 ? "" : "s"} of {recording.packages.join(", ") || "no app yet"}.
        <button type="button" className="button secondary" onClick={onStop} disabled={busy}>
          Stop recording
        </button>
        <details>
          <summary>The app model so far (Simulate can run the draft on it)</summary>
          <textarea
            readOnly
            aria-label="The recorded app model as JSON"
            rows={8}
            value={JSON.stringify(recording.model, null, 2)}
          />
        </details>
      </div>
    );
  }
  return (
    <div className="record-bar">
      <label htmlFor={`${ids}-model`}>Record into</label>
      <select id={`${ids}-model`} value={choice} onChange={(event) => setChoice(event.target.value)} disabled={busy}>
        <option value={NEW}>a new app model…</option>
        {models.map((model) => (
          <option key={model.id} value={model.id}>
            {model.name} ({model.screens} screens)
          </option>
        ))}
      </select>
      {choice === NEW && (
        <input aria-label="New app model's name" value={name} onChange={(event) => setName(event.target.value)} disabled={busy} />
      )}
      <button type="button" className="button" onClick={() => void start()} disabled={busy}>
        Record clicks
      </button>
    </div>
  );
}
