// The field app (现场核查): Vue 3 + Vant 4, an offline PWA served by the server at /field/.
import { VantResolver } from '@vant/auto-import-resolver'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { defineConfig } from 'vite'
import { VitePWA } from 'vite-plugin-pwa'
import { appConfig } from './vite.base.ts'

export default defineConfig(
  appConfig('field', {
    plugins: [
      vue(),
      Components({ resolvers: [VantResolver()], dts: 'src/components.d.ts' }),
      VitePWA({
        // The app asks before it reloads into a new version (never while an edit is open).
        registerType: 'prompt',
        injectRegister: false,
        scope: '/field/',
        base: '/field/',
        filename: 'sw.js',
        manifest: {
          name: '一窗通办 · 现场核查',
          short_name: '现场核查',
          description: '现场踏勘、联合验收与代办记录, 离线可用',
          lang: 'zh-CN',
          start_url: '/field/',
          scope: '/field/',
          display: 'standalone',
          orientation: 'any',
          theme_color: '#1f5fbf',
          background_color: '#f2f4f7',
          icons: [
            { src: 'icon.svg', sizes: 'any', type: 'image/svg+xml', purpose: 'any' },
            { src: 'icon-maskable.svg', sizes: 'any', type: 'image/svg+xml', purpose: 'maskable' },
          ],
        },
        workbox: {
          // The app shell; data lives in IndexedDB, never in these caches.
          globPatterns: ['**/*.{js,css,html,svg,woff2}'],
          navigateFallback: '/field/index.html',
          navigateFallbackAllowlist: [/^\/field\//],
          cleanupOutdatedCaches: true,
          clientsClaim: false,
          skipWaiting: false,
        },
      }),
    ],
  }),
)
