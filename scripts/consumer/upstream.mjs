// The consumer test's upstream: a plain node:http server on a port from the OS. It prints
// its base URL on the first line of stdout and serves until it is killed.
import { createServer } from "node:http"
import process from "node:process"

const server = createServer((request, response) => {
  if (request.method === "GET" && request.url === "/users/7") {
    response.writeHead(200, { "content-type": "application/json" })
    response.end(JSON.stringify({ id: 7, name: "Ada Lovelace", roles: ["admin", "author"], extra: true }))
    return
  }
  response.writeHead(404, { "content-type": "application/json" })
  response.end(JSON.stringify({ error: "not found" }))
})

server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  process.stdout.write(`http://127.0.0.1:${address.port}\n`)
})
