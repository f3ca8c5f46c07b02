/// <reference types="vitest/config" />
import { fileURLToPath } from 'node:url'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'
import { defineConfig } from 'vite'

// Built into the Python package, which serves it at /console/ (bot/console/views.py).
export default defineConfig({
  base: '/console/',
  plugins: [
    vue(),
    // Element Plus components and their CSS are imported where used, so each page's chunk carries
    // only what it needs and the sign-in page stays small.
    Components({ resolvers: [ElementPlusResolver({ importStyle: 'css' })], dts: false }),
  ],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  build: {
    outDir: fileURLToPath(new URL('../bot/console/static', import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 1200,
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8080', '/qr': 'http://127.0.0.1:8080' } },
  // Element Plus imports its CSS from its ES modules: let Vite handle them in tests too.
  // Mounting Element Plus pages in jsdom takes seconds on a busy 2-core machine.
  test: { environment: 'jsdom', testTimeout: 30000, include: ['src/**/*.test.ts'], server: { deps: { inline: ['element-plus'] } } },
})
