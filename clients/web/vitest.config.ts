// Unit tests of the web clients' modules (npm test); the screens are tested in a real browser
// by tests/browser/ in the repository.
import { defineConfig } from 'vitest/config'
import { webRoot } from './vite.base.ts'

export default defineConfig({
  resolve: { alias: { '@shared': `${webRoot}shared` } },
  test: {
    include: ['shared/**/*.test.ts', '*/src/**/*.test.ts', '*/tests/**/*.test.ts'],
    environment: 'node',
  },
})
