// The screen inspector's calls: ask a device's bridge (inspect, click) and wait for its answer.

import { ApiError, request } from "../api";
import type { AppModelRead, AppModelSummary, Command, DeviceSummary, Inspection, Recorded } from "./types";

/** How long the panel waits for a bridge's answer in all (the server expires a command after 30 s). */
const ANSWER_WITHIN_MS = 45_000;

export const inspectApi = {
  devices: () => request<DeviceSummary[]>("GET", "/devices"),
  hierarchy: (hierarchy: string) => request<Inspection>("POST", "/inspect/hierarchy", { hierarchy }),
  appModels: () => request<AppModelSummary[]>("GET", "/app-models"),
  createAppModel: (name: string) => request<AppModelRead>("POST", "/app-models", { name }),
  record: (modelId: string, deviceId: string, commandId: string) =>
    request<{ appModel: AppModelRead; recorded: Recorded }>("POST", `/app-models/${modelId}/record`, { deviceId, commandId }),
};

/**
 * Ask the device's bridge and wait for the answer (each wait is one long poll of up to 20 s).
 * Throws ApiError with the server's words: the bridge is not running (409), the command failed
 * on the phone or expired, or nobody answered in time.
 */
export async function runCommand(
  deviceId: string,
  kind: "inspect" | "click",
  params: Record<string, number> = {},
  signal?: AbortSignal,
): Promise<Command> {
  let command = await request<Command>("POST", `/devices/${deviceId}/commands`, { kind, params }, signal);
  const ends = Date.now() + ANSWER_WITHIN_MS;
  while (command.status === "pending" || command.status === "taken") {
    if (Date.now() > ends) {
      throw new ApiError(0, "the bridge did not answer in time: check that it runs beside the phone, then try again", []);
    }
    command = await request<Command>("GET", `/devices/${deviceId}/commands/${command.id}?wait=20`, undefined, signal);
  }
  if (command.status !== "done") {
    throw new ApiError(0, command.error || `the command ${command.status}`, []);
  }
  return command;
}
