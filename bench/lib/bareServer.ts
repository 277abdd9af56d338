/**
 * What the bare `node:http` reference servers share: listen on a free loopback port, print
 * `{"url":…}` once listening (what the benchmarks wait for), and stop on SIGTERM / SIGINT.
 */
import type * as http from "node:http"
import type * as net from "node:net"

export const listenAndAnnounce = (server: http.Server, onStop: () => void = () => {}): void => {
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as net.AddressInfo).port
    process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`)
  })
  const stop = () => {
    server.close()
    onStop()
    process.exit(0)
  }
  process.once("SIGTERM", stop)
  process.once("SIGINT", stop)
}
