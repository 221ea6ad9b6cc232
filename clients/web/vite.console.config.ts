// The office console (办公台): Vue 3 + Element Plus for window clerks, reviewers, supervisors
// and applicants, served by the server at /console/. Element Plus components are imported
// where they are used (with their styles) and ECharts only by the screens with charts, so each
// role's first screen stays small (bench/console_bench.py measures it).
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'
import { defineConfig } from 'vite'
import { appConfig } from './vite.base.ts'

export default defineConfig(
  appConfig('console', {
    plugins: [
      vue(),
      Components({
        resolvers: [ElementPlusResolver({ importStyle: 'css' })],
        dts: 'src/components.d.ts',
      }),
    ],
    build: {
      // ECharts (about 540 kB, 180 kB gzipped) is one chunk of its own, loaded by the chart
      // screens only; every other chunk stays far below this.
      chunkSizeWarningLimit: 600,
      rollupOptions: {
        output: {
          // One chunk for the chart library, fetched only by the screens that draw charts.
          manualChunks(id: string) {
            if (id.includes('node_modules/echarts') || id.includes('node_modules/zrender')) {
              return 'echarts'
            }
            return undefined
          },
        },
      },
    },
  }),
)
