/**
 * `deploy/grafana/liaison.json` is a valid Grafana dashboard built on the README's metrics: every
 * metric it queries is in the README's table (with only the labels listed there), and every
 * metric of the table is on the dashboard.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.join(import.meta.dirname, "..", "..")

/** The README's metric table: name → labels. */
const readmeMetrics = (): Map<string, ReadonlySet<string>> => {
  const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
  const rows = [...readme.matchAll(/^\| `(liaison_[a-z_]+)` \| (?:counter|gauge|histogram) \| (.+) \|$/gm)]
  return new Map(rows.map((row) => [row[1]!, new Set([...row[2]!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!))]))
}

interface Panel {
  readonly type: string
  readonly title: string
  readonly targets?: ReadonlyArray<{ readonly expr: string }>
}

const dashboard = JSON.parse(fs.readFileSync(path.join(root, "deploy", "grafana", "liaison.json"), "utf8")) as {
  readonly title: string
  readonly uid: string
  readonly panels: ReadonlyArray<Panel>
}

/** The family a series name belongs to (a histogram's `_bucket`, `_sum`, `_count`). */
const familyOf = (name: string, known: ReadonlyMap<string, unknown>): string =>
  known.has(name) ? name : name.replace(/_(bucket|sum|count)$/, "")

/** Each selector `name{label="…"}` and each `by (…)` list, with the metrics of its expression. */
const usesOf = (expr: string) => ({
  metrics: [...expr.matchAll(/\b(liaison_[a-z_]+)/g)].map((m) => m[1]!),
  selectorLabels: [...expr.matchAll(/\b(liaison_[a-z_]+)\{([^}]*)\}/g)].map((m) => ({
    metric: m[1]!,
    labels: [...m[2]!.matchAll(/([a-z_]+)\s*(?:=~|!=|!~|=)/g)].map((l) => l[1]!)
  })),
  groupings: [...expr.matchAll(/by \(([^)]*)\)/g)].map((m) => m[1]!.split(",").map((l) => l.trim()))
})

describe("the Grafana dashboard", () => {
  const known = readmeMetrics()

  it("the README's table lists the 20 liaison_* metrics", () => {
    expect(known.size).toBe(20)
    expect(known.get("liaison_http_server_duration_seconds")).toEqual(new Set(["method", "route", "status_class"]))
  })

  it("is a dashboard whose every query names README metrics with README labels, covering all of them", () => {
    expect(dashboard.title).toBe("Liaison")
    expect(dashboard.uid).toBe("liaison")
    const queried = new Set<string>()
    for (const panel of dashboard.panels.filter((p) => p.type !== "row")) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0)
      for (const { expr } of panel.targets ?? []) {
        const uses = usesOf(expr)
        expect(uses.metrics.length, expr).toBeGreaterThan(0)
        const families = uses.metrics.map((name) => familyOf(name, known))
        for (const family of families) {
          expect(known.has(family), `${family} in ${panel.title}`).toBe(true)
          queried.add(family)
        }
        for (const { labels, metric } of uses.selectorLabels) {
          for (const label of labels) {
            expect(known.get(familyOf(metric, known))?.has(label), `${label} of ${metric}`).toBe(true)
          }
        }
        // A grouping label is one of the expression's metrics' own (or a histogram's `le`).
        const allowed = new Set(["le", ...families.flatMap((family) => [...(known.get(family) ?? [])])])
        for (const label of uses.groupings.flat()) expect(allowed.has(label), `by ${label} in ${expr}`).toBe(true)
      }
    }
    expect([...known.keys()].filter((name) => !queried.has(name))).toEqual([])
  })
})
