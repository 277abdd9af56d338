/**
 * The reference for `bench/server.ts`: the least a Node server must do for a cache-aside
 * `GET /users/{id}` — parse the id, read the user from a `Map` (or `GET` it from Redis when `REDIS_URL`
 * is set), fetch it from `UPSTREAM_URL` on a miss, answer the JSON with `x-cache`. No framework.
 *
 *   UPSTREAM_URL=… [REDIS_URL=redis://…] tsx bench/lib/bareUsersServer.ts
 *
 * Prints `{"url":…}` once listening.
 */
import { Redis as IORedis } from "ioredis"
import * as http from "node:http"
import { listenAndAnnounce } from "./bareServer.js"

const upstream = process.env.UPSTREAM_URL ?? ""
const redis = process.env.REDIS_URL === undefined ? undefined : new IORedis(process.env.REDIS_URL)
const users = new Map<number, unknown>()

const cached = async (id: number): Promise<string | undefined> => {
  if (redis === undefined) {
    const user = users.get(id)
    return user === undefined ? undefined : JSON.stringify(user)
  }
  const stored = await redis.get(`bench:bare:users:${id}`)
  // Parsed and written again, as a cache that checks what it read would.
  return stored === null ? undefined : JSON.stringify(JSON.parse(stored))
}

const fetched = async (id: number): Promise<string | undefined> => {
  const response = await fetch(`${upstream}/users/${id}`)
  if (response.status !== 200) return undefined
  const user: unknown = await response.json()
  if (redis === undefined) users.set(id, user)
  else await redis.set(`bench:bare:users:${id}`, JSON.stringify(user), "EX", 600)
  return JSON.stringify(user)
}

const answer = (res: http.ServerResponse, status: number, body: string, cache?: string) => {
  res.writeHead(status, {
    "content-type": status === 200 ? "application/json" : "application/problem+json",
    "content-length": Buffer.byteLength(body),
    ...(cache === undefined ? {} : { "x-cache": cache })
  })
  res.end(body)
}

const server = http.createServer((req, res) => {
  const match = /^\/users\/(\d{1,16})$/.exec(req.url ?? "")
  if (req.method !== "GET" || match === null) return answer(res, 404, "{\"status\":404}")
  const id = Number(match[1])
  cached(id).then(async (hit) => {
    if (hit !== undefined) return answer(res, 200, hit, "hit")
    const miss = await fetched(id)
    return miss === undefined ? answer(res, 404, "{\"status\":404}") : answer(res, 200, miss, "miss")
  }).catch(() => answer(res, 503, "{\"status\":503}"))
})

listenAndAnnounce(server, () => redis?.disconnect())
