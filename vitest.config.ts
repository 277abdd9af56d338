import * as path from "node:path"
import { defineConfig } from "vitest/config"

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources, not the built `dist/`.
    alias: [
      {
        find: /^@liaison\/(core|integrations|server)$/,
        replacement: path.join(import.meta.dirname, "packages/$1/src/index.ts")
      },
      {
        find: /^@liaison\/(core|integrations|server)\/(.*)$/,
        replacement: path.join(import.meta.dirname, "packages/$1/src/$2.ts")
      }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/setup/redis.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    sequence: { hooks: "list" }
  }
})
