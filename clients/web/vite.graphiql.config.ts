// GraphiQL, self-hosted: built like the apps into dist/graphiql/, its page served by the
// server at /graphql for browsers and its files at /graphiql/assets/ (no CDN anywhere).
import { defineConfig } from 'vite'
import { appConfig } from './vite.base.ts'

export default defineConfig(
  appConfig('graphiql', {
    build: {
      // Monaco and GraphiQL are big; this page is a developer's tool, not a role's screen.
      chunkSizeWarningLimit: 5000,
      rollupOptions: {
        // React libraries mark their modules "use client"; that means nothing in a plain bundle.
        onwarn(warning, warn) {
          if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning)
        },
      },
    },
    worker: { format: 'es' },
  }),
)
