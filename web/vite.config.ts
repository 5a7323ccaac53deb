// The bundle is built into the Python package (handlers/webapp_static/), which the server serves
// at `/`: `pip install -e . && collab dev` then needs no Node. tests/test_webapp_bundle.py rebuilds
// it from these sources and fails when the committed bundle is not what they produce.
import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: '../handlers/webapp_static',
    emptyOutDir: true,
    chunkSizeWarningLimit: 4096,
    sourcemap: false
  },
  server: {
    // The dev server is the "second origin" of the README: it talks to the API through CORS.
    port: 5173,
    strictPort: true
  }
})
