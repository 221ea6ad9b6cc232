// Builds every web app: one `vite.<app>.config.ts` each, into dist/<app>/ (npm run build).
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'

const root = fileURLToPath(new URL('..', import.meta.url))
const configs = readdirSync(root)
  .filter((name) => /^vite\.[a-z][a-z0-9-]*\.config\.ts$/.test(name))
  .sort()
if (configs.length === 0) {
  console.error(`no vite.<app>.config.ts in ${root}: nothing to build`)
  process.exit(1)
}
for (const [index, name] of configs.entries()) {
  const app = name.split('.')[1]
  console.log(`[${index + 1}/${configs.length}] building the ${app} app (${name}) into dist/${app}/`)
  await build({ configFile: join(root, name), logLevel: 'warn' })
}
console.log(`built ${configs.length} web app(s) into ${join(root, 'dist')}`)
