import * as Undici from "@effect/platform-node/Undici"
import type { LookupAddress, LookupOptions } from "node:dns"
import * as dns from "node:dns"
import * as net from "node:net"

/**
 * What kind of address a webhook target resolved to. `public` is always allowed, `reserved`
 * (unspecified, multicast, broadcast, documentation ranges) never; the others only when allowed.
 *
 * @internal
 */
export type AddressKind = "public" | "loopback" | "private" | "link-local" | "reserved"

/** @internal */
export interface Policy {
  readonly loopback: boolean
  readonly private: boolean
  readonly linkLocal: boolean
}

const list = (ranges: ReadonlyArray<readonly [string, number, "ipv4" | "ipv6"]>): net.BlockList => {
  const blockList = new net.BlockList()
  for (const [network, prefix, family] of ranges) blockList.addSubnet(network, prefix, family)
  return blockList
}

// BlockList also matches IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) against the IPv4 ranges.
const loopback = list([["127.0.0.0", 8, "ipv4"], ["::1", 128, "ipv6"]])
const privateNetworks = list([
  ["10.0.0.0", 8, "ipv4"],
  ["172.16.0.0", 12, "ipv4"],
  ["192.168.0.0", 16, "ipv4"],
  // Carrier-grade NAT; Alibaba Cloud's metadata service is 100.100.100.200.
  ["100.64.0.0", 10, "ipv4"],
  ["198.18.0.0", 15, "ipv4"],
  // Unique local addresses; AWS's IPv6 metadata service is fd00:ec2::254.
  ["fc00::", 7, "ipv6"]
])
// The cloud metadata services at 169.254.169.254 are link-local.
const linkLocal = list([["169.254.0.0", 16, "ipv4"], ["fe80::", 10, "ipv6"]])
const reserved = list([
  ["0.0.0.0", 8, "ipv4"],
  ["192.0.0.0", 24, "ipv4"],
  ["192.0.2.0", 24, "ipv4"],
  ["198.51.100.0", 24, "ipv4"],
  ["203.0.113.0", 24, "ipv4"],
  ["224.0.0.0", 4, "ipv4"],
  ["240.0.0.0", 4, "ipv4"],
  ["::", 128, "ipv6"],
  ["100::", 64, "ipv6"],
  ["2001:db8::", 32, "ipv6"],
  ["ff00::", 8, "ipv6"]
])

const nat64 = list([["64:ff9b::", 96, "ipv6"]])
const sixToFour = list([["2002::", 16, "ipv6"]])

/** The IPv4 address inside a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address, if it is one. */
const embeddedIpv4 = (address: string): string | undefined => {
  if (!nat64.check(address, "ipv6") && !sixToFour.check(address, "ipv6")) return undefined
  const words = expandIpv6(address)
  if (words === undefined) return undefined
  const v4 = (high: number, low: number) => `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`
  if (nat64.check(address, "ipv6")) return v4(words[6]!, words[7]!)
  if (sixToFour.check(address, "ipv6")) return v4(words[1]!, words[2]!)
  return undefined
}

/** The eight 16-bit words of an IPv6 address. */
const expandIpv6 = (address: string): Array<number> | undefined => {
  let text = address
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (dotted !== null) {
    const parts = dotted[1]!.split(".").map(Number)
    text = `${text.slice(0, dotted.index)}${((parts[0]! << 8) | parts[1]!).toString(16)}:${
      ((parts[2]! << 8) | parts[3]!).toString(16)
    }`
  }
  const [head = "", tail] = text.split("::")
  const left = head === "" ? [] : head.split(":")
  const right = tail === undefined || tail === "" ? [] : tail.split(":")
  const missing = 8 - left.length - right.length
  if (tail === undefined ? missing !== 0 : missing < 0) return undefined
  const words = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill("0"), ...right].map((word) =>
    parseInt(word, 16)
  )
  return words.length === 8 && words.every((word) => word >= 0 && word <= 0xffff) ? words : undefined
}

/** @internal */
export const classify = (address: string): AddressKind => {
  const family = net.isIPv4(address) ? "ipv4" : net.isIPv6(address) ? "ipv6" : undefined
  if (family === undefined) return "reserved"
  if (family === "ipv6") {
    const inner = embeddedIpv4(address)
    if (inner !== undefined) return classify(inner)
  }
  if (reserved.check(address, family)) return "reserved"
  if (loopback.check(address, family)) return "loopback"
  if (linkLocal.check(address, family)) return "link-local"
  if (privateNetworks.check(address, family)) return "private"
  return "public"
}

/** @internal */
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
    case "reserved":
      return false
  }
}

/**
 * Why an address is refused, e.g. `127.0.0.1 is a loopback address`; undefined when it is allowed.
 *
 * @internal
 */
export const refusal = (policy: Policy, address: string): string | undefined => {
  const kind = classify(address)
  return allowed(policy, kind) ? undefined : `${address} is a ${kind} address`
}

/**
 * Why a host that is a literal address is refused; undefined for names (the guarded lookup checks
 * those) and for allowed addresses.
 *
 * @internal
 */
export const literalRefusal = (policy: Policy, host: string): string | undefined =>
  net.isIP(host) === 0 ? undefined : refusal(policy, host)

/** The host of a URL without IPv6 brackets. @internal */
export const hostOf = (url: URL): string => url.hostname.replace(/^\[(.*)\]$/, "$1")

/**
 * Resolves a host (a literal address resolves to itself) and refuses it when any of its addresses
 * is refused: a name pointing both outside and inside is not trusted.
 *
 * @internal
 */
export const checkHost = async (policy: Policy, host: string): Promise<string | undefined> => {
  if (net.isIP(host) !== 0) return refusal(policy, host)
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
