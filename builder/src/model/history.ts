// Undo/redo over whole definitions. Typing in one field coalesces into one step: a change with
// the same `key` as the last one, within a second, replaces it instead of adding a step.

import type { Definition } from "../types";

export interface History {
  past: Definition[];
  present: Definition;
  future: Definition[];
  lastKey?: string;
  lastAt: number;
}

export type HistoryAction =
  | { type: "change"; definition: Definition; key?: string; at: number }
  | { type: "undo" }
  | { type: "redo" }
  | { type: "reset"; definition: Definition };

const LIMIT = 200;
const COALESCE_MS = 1000;

export function startHistory(definition: Definition): History {
  return { past: [], present: definition, future: [], lastAt: 0 };
}

export function historyReducer(state: History, action: HistoryAction): History {
  switch (action.type) {
    case "change": {
      if (action.definition === state.present) return state;
      const coalesce = action.key !== undefined && action.key === state.lastKey && action.at - state.lastAt < COALESCE_MS;
      const past = coalesce ? state.past : [...state.past, state.present].slice(-LIMIT);
      return { past, present: action.definition, future: [], lastKey: action.key, lastAt: action.at };
    }
    case "undo": {
      const previous = state.past[state.past.length - 1];
      if (!previous) return state;
      return { past: state.past.slice(0, -1), present: previous, future: [state.present, ...state.future], lastAt: 0 };
    }
    case "redo": {
      const [next, ...rest] = state.future;
      if (!next) return state;
      return { past: [...state.past, state.present], present: next, future: rest, lastAt: 0 };
    }
    case "reset":
      return startHistory(action.definition);
  }
}
