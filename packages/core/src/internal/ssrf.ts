/**
 * The SSRF guard: which addresses a connection may reach. Addresses are classified by ipaddr.js;
 * an IPv6 address that carries an IPv4 address (IPv4-mapped, IPv4-compatible, IPv4-translated,
 * NAT64, 6to4, Teredo) is judged by that IPv4 address.
 *
 * The policy, the classification and the checks are not marked `@internal`: `test/core/ssrf.test.ts`
 * type-checks against the emitted declarations (`./internal/*` is not exported by the package).
 */
import * as Undici from "@effect/platform-node/Undici"
import type * as IpAddr from "ipaddr.js"
import type { LookupAddress, LookupOptions } from "node:dns"
import * as dns from "node:dns"
import { createRequire } from "node:module"
import * as net from "node:net"

// ipaddr.js is CommonJS assigning `module.exports`: Node's ESM loader sees no named exports in it,
// and this project type-checks without synthetic default imports, so it is loaded with `require`.
const ipaddr: typeof IpAddr = createRequire(import.meta.url)("ipaddr.js")

/**
 * What kind of address a target resolved to. `public` (global unicast) is always allowed;
 * `metadata` (the cloud metadata services) and `reserved` (unspecified, broadcast, multicast,
 * documentation, site-local, deprecated and other special-purpose ranges, anything that does not
 * parse) never; the others only when the policy allows them.
 */
export type AddressKind = "public" | "loopback" | "private" | "link-local" | "metadata" | "reserved"

/** Which non-public kinds of address are allowed (public ones always are, metadata and reserved never). */
export interface Policy {
  readonly loopback: boolean
  readonly private: boolean
  readonly linkLocal: boolean
}

type Address = IpAddr.IPv4 | IpAddr.IPv6

// The ranges are ipaddr.js's (`range()`); the few below are those it names differently, and the
// prefixes whose embedded IPv4 address decides.
const cidr4 = (text: string): [IpAddr.IPv4, number] => ipaddr.IPv4.parseCIDR(text)
const cidr6 = (text: string): [IpAddr.IPv6, number] => ipaddr.IPv6.parseCIDR(text)

/** ipaddr.js's range names, as kinds; any other name (multicast, reserved, amt, …) is `reserved`. */
const rangeKinds: ReadonlyMap<string, AddressKind> = new Map<string, AddressKind>([
  ["unicast", "public"],
  ["loopback", "loopback"],
  ["private", "private"],
  ["carrierGradeNat", "private"],
  ["benchmarking", "private"],
  ["uniqueLocal", "private"],
  ["linkLocal", "link-local"]
])

/** Benchmarking networks (RFC 2544, RFC 5180) count as private (ipaddr.js calls 198.18.0.0/15 reserved). */
const benchmarking4 = cidr4("198.18.0.0/15")
const benchmarking6 = cidr6("2001:2::/48")

/**
 * The cloud metadata services: AWS, GCP, Azure, OpenStack, DigitalOcean (169.254.169.254), AWS ECS
 * and EKS (169.254.170.2, 169.254.170.23, fd00:ec2::23), AWS over IPv6 (fd00:ec2::254), Alibaba
 * (100.100.100.200), Azure's wire server (168.63.129.16), Oracle (192.0.0.192).
 */
const metadataServices = new Set(
  [
    "169.254.169.254",
    "169.254.170.2",
    "169.254.170.23",
    "fd00:ec2::254",
    "fd00:ec2::23",
    "100.100.100.200",
    "168.63.129.16",
    "192.0.0.192"
  ].map((address) => ipaddr.parse(address).toByteArray().join("."))
)

const isMetadata = (address: Address): boolean => metadataServices.has(address.toByteArray().join("."))

const v4 = (high: number, low: number): IpAddr.IPv4 => new ipaddr.IPv4([high >> 8, high & 255, low >> 8, low & 255])

const classifyV4 = (address: IpAddr.IPv4): AddressKind => {
  if (isMetadata(address)) return "metadata"
  if (address.match(benchmarking4)) return "private"
  return rangeKinds.get(address.range()) ?? "reserved"
}

/**
 * An address that stands for an IPv4 address is judged as that address. When the prefix itself
 * is not globally routable (local-use NAT64, IPv4-compatible, IPv4-translated), a public IPv4
 * inside it is still `reserved`.
 */
const asIpv4 = (inner: IpAddr.IPv4, globalPrefix: boolean): AddressKind => {
  const kind = classifyV4(inner)
  return kind === "public" && !globalPrefix ? "reserved" : kind
}

const nat64 = cidr6("64:ff9b::/96")
const nat64Local = cidr6("64:ff9b:1::/48")
const sixToFour = cidr6("2002::/16")
const teredo = cidr6("2001::/32")
const ipv4Mapped = cidr6("::ffff:0:0/96")
const ipv4Translated = cidr6("::ffff:0:0:0/96")
const ipv4Compatible = cidr6("::/96")

/** The kind of an IPv6 address that embeds an IPv4 address; undefined for any other. */
const embeddedKind = (address: IpAddr.IPv6): AddressKind | undefined => {
  const [, p1 = 0, p2 = 0, p3 = 0, , , p6 = 0, p7 = 0] = address.parts
  const last = v4(p6, p7)
  if (address.match(ipv4Mapped)) return classifyV4(last)
  if (address.match(nat64)) return asIpv4(last, true)
  // RFC 8215's local-use prefix: read with the /96 layout (the usual one); refused either way.
  if (address.match(nat64Local)) return asIpv4(last, false)
  if (address.match(sixToFour)) return asIpv4(v4(p1, p2), true)
  if (address.match(teredo)) {
    // The Teredo server's address, then the client's (its bits inverted).
    const server = classifyV4(v4(p2, p3))
    return server !== "public" ? server : classifyV4(v4(p6 ^ 0xffff, p7 ^ 0xffff))
  }
  if (address.match(ipv4Translated)) return asIpv4(last, false)
  // ::a.b.c.d (deprecated IPv4-compatible), but not :: (unspecified) or ::1 (loopback).
  if (address.match(ipv4Compatible) && (p6 !== 0 || p7 > 1)) return asIpv4(last, false)
  return undefined
}

/** Only 2000::/3 is global unicast; in it, 2001::/23 (IETF protocol assignments) and the documentation prefixes are not. */
const globalUnicast = cidr6("2000::/3")
const notGlobal = [cidr6("2001::/23"), cidr6("2001:db8::/32"), cidr6("3fff::/20")]

const classifyV6 = (address: IpAddr.IPv6): AddressKind => {
  if (isMetadata(address)) return "metadata"
  const embedded = embeddedKind(address)
  if (embedded !== undefined) return embedded
  if (address.match(benchmarking6)) return "private"
  const kind = rangeKinds.get(address.range()) ?? "reserved"
  if (kind !== "public") return kind
  return address.match(globalUnicast) && !notGlobal.some((range) => address.match(range)) ? "public" : "reserved"
}

/**
 * Whether a host is an IPv4 literal by the URL standard's rule (its last label is a number), so
 * that `0x7f.1`, `017700000001` or `2130706433` are read as addresses, not names.
 */
const endsInNumber = (host: string): boolean => {
  const labels = host.replace(/\.$/, "").split(".")
  return /^(\d+|0x[\da-f]*)$/i.test(labels[labels.length - 1] ?? "")
}

/**
 * The address a literal host stands for, canonical (`0x7f.1` → `127.0.0.1`, read as URLs and so
 * undici read it); the host itself when it is a malformed literal; undefined for a name.
 */
const literal = (host: string): string | undefined => {
  const bare = host.replace(/^\[(.*)\]$/, "$1")
  if (net.isIP(bare) !== 0) return bare
  if (!endsInNumber(bare)) return undefined
  const url = `http://${bare}/`
  return URL.canParse(url) ? new URL(url).hostname : bare
}

const parse = (address: string): Address | undefined => {
  if (!ipaddr.isValid(address)) return undefined
  try {
    // `process` reads an IPv4-mapped IPv6 address as its IPv4 address.
    return ipaddr.process(address)
  } catch {
    return undefined
  }
}

/**
 * The kind of an address (an IP literal in any form URLs accept); `reserved` for anything that
 * is not an address.
 */
export const classify = (address: string): AddressKind => {
  const parsed = parse(literal(address) ?? address)
  if (parsed === undefined) return "reserved"
  return parsed instanceof ipaddr.IPv4 ? classifyV4(parsed) : classifyV6(parsed)
}

/** Whether the policy allows an address of this kind. */
export const allowed = (policy: Policy, kind: AddressKind): boolean => {
  switch (kind) {
    case "public":
      return true
    case "loopback":
      return policy.loopback
    case "private":
      return policy.private
    case "link-local":
      return policy.linkLocal
    case "metadata":
    case "reserved":
      return false
  }
}

const labels: Record<AddressKind, string> = {
  public: "a public",
  loopback: "a loopback",
  private: "a private",
  "link-local": "a link-local",
  metadata: "a cloud metadata",
  reserved: "a reserved"
}

/**
 * Why an address is refused, e.g. `127.0.0.1 is a loopback address`; undefined when it is allowed.
 */
export const refusal = (policy: Policy, address: string): string | undefined => {
  const kind = classify(address)
  return allowed(policy, kind) ? undefined : `${address} is ${labels[kind]} address`
}

/**
 * Why a host that is a literal address is refused; undefined for names (the guarded lookup checks
 * those) and for allowed addresses.
 */
export const literalRefusal = (policy: Policy, host: string): string | undefined =>
  literal(host) === undefined ? undefined : refusal(policy, host)

/** The host of a URL without IPv6 brackets. */
export const hostOf = (url: URL): string => url.hostname.replace(/^\[(.*)\]$/, "$1")

/**
 * Resolves a host (a literal address resolves to itself) and refuses it when any of its addresses
 * is refused: a name pointing both outside and inside is not trusted.
 */
export const checkHost = async (policy: Policy, host: string): Promise<string | undefined> => {
  if (literal(host) !== undefined) return refusal(policy, host)
  const addresses = await dns.promises.lookup(host, { all: true, verbatim: true })
  if (addresses.length === 0) return `${host} does not resolve`
  for (const { address } of addresses) {
    const why = refusal(policy, address)
    if (why !== undefined) return `${host} resolves to ${why}`
  }
  return undefined
}

/**
 * An error of the connect-time guard: the name resolved only to refused addresses.
 *
 * @internal
 */
export class SsrfRefused extends Error {
  readonly code = "ESSRFREFUSED"
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | Array<LookupAddress>,
  family?: number
) => void

/**
 * A `lookup` for `net.connect` (undici's `connect.lookup`) that connects only to allowed
 * addresses: the check happens on the very addresses the socket is opened to, so a name that
 * resolves elsewhere the second time (DNS rebinding) gains nothing.
 *
 * @internal
 */
export const guardedLookup = (policy: Policy) =>
(
  hostname: string,
  options: LookupOptions,
  callback: LookupCallback
): void => {
  dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error !== null) return callback(error, [])
    const kept = addresses.filter((entry) => refusal(policy, entry.address) === undefined)
    if (kept.length === 0) {
      const why = addresses.map((entry) => refusal(policy, entry.address)).join(", ")
      return callback(new SsrfRefused(`refused to connect to ${hostname}: ${why}`), [])
    }
    if (options.all === true) return callback(null, kept)
    const first = kept[0]!
    callback(null, first.address, first.family)
  })
}

/**
 * An undici connector that applies the policy to every connection: a literal address is
 * checked before connecting (no lookup happens for one), a name through {@link guardedLookup}.
 *
 * @internal
 */
export const guardedConnector = (
  policy: Policy,
  options: Undici.buildConnector.BuildOptions
): Undici.buildConnector.connector => {
  const connect = Undici.buildConnector({ ...options, lookup: guardedLookup(policy) })
  return (target, callback) => {
    const why = literalRefusal(policy, target.hostname.replace(/^\[(.*)\]$/, "$1"))
    if (why !== undefined) return callback(new SsrfRefused(`refused to connect to ${target.hostname}: ${why}`), null)
    connect(target, callback)
  }
}
