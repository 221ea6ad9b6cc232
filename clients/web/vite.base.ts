// The Vite settings every web client shares: one app per `vite.<app>.config.ts`, each built
// from `clients/web/<app>/` into `clients/web/dist/<app>/` and served by the server at `/<app>/`.
import { fileURLToPath } from 'node:url'
import { mergeConfig, type UserConfig } from 'vite'

export const webRoot = fileURLToPath(new URL('.', import.meta.url))

/** The OneWindow server that `npm run dev:<app>` forwards the API to (`make run` serves it). */
export const backend = process.env.ONEWINDOW_DEV_BACKEND ?? 'http://127.0.0.1:8000'

export function appConfig(app: string, extra: UserConfig): UserConfig {
  return mergeConfig(
    {
      root: `${webRoot}${app}`,
      base: `/${app}/`,
      resolve: { alias: { '@shared': `${webRoot}shared` } },
      build: {
        outDir: `${webRoot}dist/${app}`,
        emptyOutDir: true,
        target: 'es2022',
        assetsDir: 'assets',
        reportCompressedSize: false,
        chunkSizeWarningLimit: 400,
      },
      server: {
        proxy: {
          '/graphql': backend,
          '/objects': backend,
          '/sync': { target: backend.replace(/^http/, 'ws'), ws: true },
        },
      },
    } satisfies UserConfig,
    extra,
  )
}
