import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Http } from "@liaison/core"
import { Effect, FastCheck as fc } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { AddressKind, Policy } from "../../packages/core/src/internal/ssrf.js"
import { checkHost, classify, hostOf, literalRefusal, refusal } from "../../packages/core/src/internal/ssrf.js"

const strict: Policy = { loopback: false, private: false, linkLocal: false }
const lax: Policy = { loopback: true, private: true, linkLocal: true }

const label: Record<Exclude<AddressKind, "public">, string> = {
  loopback: "is a loopback address",
  private: "is a private address",
  "link-local": "is a link-local address",
  metadata: "is a cloud metadata address",
  reserved: "is a reserved address"
}

/**
 * The URL forms an SSRF checklist tries, by the kind each must be refused as: encodings of
 * IPv4 (decimal, octal, hex, short forms, Unicode digits and dots), IPv4 inside IPv6 (mapped,
 * compatible, translated, NAT64, 6to4, Teredo), and every special-purpose range.
 */
const refused: ReadonlyArray<readonly [string, Exclude<AddressKind, "public">]> = [
  // Loopback, IPv4 in every spelling a URL accepts.
  ["127.0.0.1", "loopback"],
  ["127.1", "loopback"],
  ["127.0.1", "loopback"],
  ["127.000.000.001", "loopback"],
  ["0177.0.0.1", "loopback"],
  ["0177.1", "loopback"],
  ["0x7f.0.0.1", "loopback"],
  ["0x7f.1", "loopback"],
  ["0x7F.0x00.0x00.0x01", "loopback"],
  ["0x7f000001", "loopback"],
  ["2130706433", "loopback"],
  ["017700000001", "loopback"],
  ["127.0.0.1.", "loopback"],
  ["127.127.127.127", "loopback"],
  ["127.255.255.254", "loopback"],
  ["①②⑦.⓪.⓪.①", "loopback"],
  ["127。0。0。1", "loopback"],
  ["０x7f.1", "loopback"],
  // Loopback in IPv6.
  ["[::1]", "loopback"],
  ["[0:0:0:0:0:0:0:1]", "loopback"],
  ["[0000::1]", "loopback"],
  ["[::ffff:127.0.0.1]", "loopback"],
  ["[::ffff:7f00:1]", "loopback"],
  ["[0:0:0:0:0:ffff:127.0.0.1]", "loopback"],
  ["[::ffff:0:7f00:1]", "loopback"],
  ["[::127.0.0.1]", "loopback"],
  ["[64:ff9b::127.0.0.1]", "loopback"],
  ["[2002:7f00:1::]", "loopback"],
  // Unspecified, broadcast, multicast, documentation and other reserved ranges.
  ["0.0.0.0", "reserved"],
  ["0", "reserved"],
  ["0x0", "reserved"],
  ["[::]", "reserved"],
  ["[0:0:0:0:0:0:0:0]", "reserved"],
  ["[::ffff:0.0.0.0]", "reserved"],
  ["255.255.255.255", "reserved"],
  ["224.0.0.1", "reserved"],
  ["239.255.255.250", "reserved"],
  ["240.0.0.1", "reserved"],
  ["192.0.0.8", "reserved"],
  ["192.0.2.1", "reserved"],
  ["198.51.100.7", "reserved"],
  ["203.0.113.9", "reserved"],
  ["[ff02::1]", "reserved"],
  ["[2001:db8::1]", "reserved"],
  ["[3fff::1]", "reserved"],
  ["[100::1]", "reserved"],
  ["[fec0::1]", "reserved"],
  ["[2001:10::1]", "reserved"],
  ["[4000::1]", "reserved"],
  // Teredo: server 65.54.227.120, client 192.0.2.45 (documentation).
  ["[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "reserved"],
  // Private networks: RFC 1918, carrier-grade NAT, benchmarking, unique-local, and IPv4 in IPv6.
  ["10.0.0.1", "private"],
  ["10.255.255.255", "private"],
  ["012.0.0.1", "private"],
  ["167772161", "private"],
  ["172.16.0.1", "private"],
  ["172.31.255.254", "private"],
  ["192.168.0.1", "private"],
  ["0xc0.0xa8.1.1", "private"],
  ["3232235777", "private"],
  ["100.64.0.1", "private"],
  ["198.18.0.1", "private"],
  ["[fc00::1]", "private"],
  ["[fd12:3456:789a::1]", "private"],
  ["[::ffff:10.0.0.1]", "private"],
  ["[::ffff:a00:1]", "private"],
  ["[::ffff:192.168.1.1]", "private"],
  ["[64:ff9b::a00:1]", "private"],
  ["[64:ff9b:1::a00:1]", "private"],
  ["[2002:c0a8:101::1]", "private"],
  ["[2001:2::1]", "private"],
  // Link-local.
  ["169.254.0.1", "link-local"],
  ["169.254.1.1", "link-local"],
  ["[fe80::1]", "link-local"],
  ["[::ffff:169.254.1.1]", "link-local"],
  // Cloud metadata services, however written.
  ["169.254.169.254", "metadata"],
  ["0xa9fea9fe", "metadata"],
  ["2852039166", "metadata"],
  ["0251.0376.0251.0376", "metadata"],
  ["169.254.43518", "metadata"],
  ["[::ffff:169.254.169.254]", "metadata"],
  ["[::ffff:a9fe:a9fe]", "metadata"],
  ["[64:ff9b::a9fe:a9fe]", "metadata"],
  ["[fd00:ec2::254]", "metadata"],
  ["169.254.170.2", "metadata"],
  ["100.100.100.200", "metadata"],
  ["168.63.129.16", "metadata"]
]

/** The four forms the hand-written tables let through. */
const formerlyPassed = ["[::127.0.0.1]", "[::ffff:0:7f00:1]", "[fec0::1]", "[64:ff9b:1::a00:1]"]

const allowed = [
  "8.8.8.8",
  "1.1.1.1",
  "134744072",
  "[2001:4860:4860::8888]",
  "[2606:4700:4700::1111]",
  "[::ffff:8.8.8.8]",
  "[64:ff9b::808:808]",
  "[2002:808:808::1]"
]

describe("SSRF guard: every URL form of a non-public address is refused, with its reason", () => {
  it("refuses each form, read as a URL host and as the host a caller might pass as it is", () => {
    expect(refused.length).toBeGreaterThanOrEqual(66)
    for (const form of formerlyPassed) expect(refused.map(([host]) => host)).toContain(form)
    for (const [form, kind] of refused) {
      const host = hostOf(new URL(`http://${form}/`))
      expect([form, literalRefusal(strict, host)]).toEqual([form, `${host} ${label[kind]}`])
      expect([form, classify(host)]).toEqual([form, kind])
    }
    // The spellings URLs normalise are literals on their own too, not names to look up.
    const bare = [
      ["0x7f.1", "loopback"],
      ["2130706433", "loopback"],
      ["017700000001", "loopback"],
      ["127.1", "loopback"],
      ["0251.0376.0251.0376", "metadata"]
    ] as const
    for (const [form, kind] of bare) {
      expect([form, literalRefusal(strict, form)]).toEqual([form, `${form} ${label[kind]}`])
    }
    expect(literalRefusal(strict, "1.2.3.4.5")).toBe("1.2.3.4.5 is a reserved address")
  })

  it("allows public addresses, in any spelling", () => {
    for (const form of allowed) {
      const host = hostOf(new URL(`http://${form}/`))
      expect([form, classify(host), literalRefusal(strict, host)]).toEqual([form, "public", undefined])
    }
    // A name is not a literal: the guarded lookup checks what it resolves to.
    expect(literalRefusal(strict, "example.com")).toBeUndefined()
  })

  it("the policy allows loopback, private and link-local on request; metadata and reserved never", () => {
    const decisions = refused.map(([form]) => [form, refusal(lax, hostOf(new URL(`http://${form}/`)))] as const)
    for (const [form, kind] of refused) {
      const decision = decisions.find(([other]) => other === form)?.[1]
      if (kind === "metadata" || kind === "reserved") expect([form, decision]).not.toEqual([form, undefined])
      else expect([form, decision]).toEqual([form, undefined])
    }
    expect(refusal({ ...strict, loopback: true }, "127.0.0.1")).toBeUndefined()
    expect(refusal({ ...strict, loopback: true }, "10.0.0.1")).toBe("10.0.0.1 is a private address")
    expect(refusal({ ...strict, linkLocal: true }, "169.254.169.254")).toBe(
      "169.254.169.254 is a cloud metadata address"
    )
  })

  it("a name is judged by what it resolves to: localhost is loopback", async () => {
    expect(await checkHost(strict, "localhost")).toMatch(/^localhost resolves to .* is a loopback address$/)
    expect(await checkHost({ ...strict, loopback: true }, "localhost")).toBeUndefined()
  })

  it("any address in 10/8, 172.16/12, 192.168/16, 127/8 or 169.254/16, also IPv4-mapped, is refused by default", () => {
    const networks: ReadonlyArray<readonly [number, number]> = [
      [0x0a000000, 8],
      [0xac100000, 12],
      [0xc0a80000, 16],
      [0x7f000000, 8],
      [0xa9fe0000, 16]
    ]
    const address = fc.tuple(fc.constantFrom(...networks), fc.integer({ min: 0, max: 0xffffffff })).map(
      ([[base, prefix], bits]) => (base | (bits >>> prefix)) >>> 0
    )
    const dotted = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".")
    const hex = (n: number) => `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`
    fc.assert(
      fc.property(address, (n) => {
        for (const form of [dotted(n), `${n}`, `[::ffff:${dotted(n)}]`, `[::ffff:${hex(n)}]`]) {
          const host = hostOf(new URL(`http://${form}/`))
          expect([form, classify(host)]).not.toEqual([form, "public"])
          expect(literalRefusal(strict, host)).toBeDefined()
        }
      }),
      { numRuns: 500 }
    )
  })
})

describe("SSRF guard in Http: refused before anything is sent", () => {
  let server: http.Server
  let port = 0
  let received = 0
  beforeAll(async () => {
    server = http.createServer((_request, response) => {
      received++
      response.end("reached")
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    port = (server.address() as AddressInfo).port
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  const get = (host: string) => Http.text(HttpClientRequest.get(`http://${host}:${port}/`))

  it.effect("a loopback server behind obfuscated hosts is a TransportError (blocked); nothing reaches it", () =>
    Effect.gen(function*() {
      for (const host of ["127.1", "0x7f.1", "2130706433", "[::ffff:7f00:1]", "[::ffff:0:7f00:1]", "localhost"]) {
        const error = yield* Effect.flip(get(host))
        expect([host, error._tag, error._tag === "TransportError" ? error.reason : ""]).toEqual([
          host,
          "TransportError",
          "blocked"
        ])
      }
      expect(received).toBe(0)
      // The same server, allowed, is reached: the refusal was the guard's.
      const reached = yield* get("0x7f.1").pipe(Effect.provide(Http.layer({ addressGuard: { loopback: true } })))
      expect(reached).toBe("reached")
      expect(received).toBe(1)
    }).pipe(Effect.provide(Http.layer({ addressGuard: {} }))))
})
