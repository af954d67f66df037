"""The web dashboard: server-rendered pages for a signed-in account, live over SSE."""
