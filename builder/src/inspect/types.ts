// Shapes of the screen inspector's API answers (docs/http-api.md, "Device commands").

export interface SelectorMatch {
  selector: Record<string, string | number>;
  /** How many elements the selector (without its index) matches on this screen. */
  matches: number;
  unique: boolean;
}

export interface ScreenElement {
  id: number;
  parent: number | null;
  depth: number;
  className: string;
  text: string;
  resourceId: string;
  contentDesc: string;
  package: string;
  bounds: [number, number, number, number];
  visible: boolean;
  clickable: boolean;
  editable: boolean;
  scrollable: boolean;
  enabled: boolean;
  checked: boolean;
  selected: boolean;
  password: boolean;
  selectors: SelectorMatch[];
}

export interface Inspection {
  screen: { width: number; height: number } | null;
  elements: ScreenElement[];
  error?: string;
}

export interface Foreground {
  package: string | null;
  activity: string | null;
}

export interface CommandResult {
  screenshot?: { contentType: string; data: string };
  hierarchy?: string;
  foreground?: Foreground;
  clicked?: { x: number; y: number };
  before?: { hierarchy: string; foreground: Foreground };
}

export interface Command {
  id: string;
  deviceId: string;
  kind: "inspect" | "click";
  status: "pending" | "taken" | "done" | "failed" | "expired";
  result: CommandResult | null;
  error: string | null;
  inspection: Inspection | null;
}

export interface DeviceSummary {
  id: string;
  name: string;
  serial: string;
  revokedAt: string | null;
  lastSeenAt: string | null;
}

export interface AppModelSummary {
  id: string;
  name: string;
  packages: string[];
  screens: number;
}

export interface AppModelRead extends AppModelSummary {
  model: Record<string, unknown>;
}

export interface Recorded {
  package: string;
  screen: string;
  before: string | null;
  widget: string | null;
  action: Record<string, unknown> | null;
}
