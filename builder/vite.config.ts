// The builder island (src/main.tsx) and the run page's screen overlay (src/overlay.tsx), built into the server's static folder.
// The server reads the manifest to find the hashed entry files (server/dashboard/builder_assets.py).
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  base: "/static/builder/",
  build: {
    outDir: "../server/dashboard/static/builder",
    emptyOutDir: true,
    manifest: true,
    target: "es2022",
    // The dashboard's CSP allows scripts from its own origin only: no inline module preload helper.
    modulePreload: { polyfill: false },
    rollupOptions: { input: ["src/main.tsx", "src/overlay.tsx"] },
  },
});
