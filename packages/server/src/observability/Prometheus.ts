/**
 * Every `effect/Metric` in the global registry as Prometheus text (exposition format 0.0.4): a
 * `# HELP` and `# TYPE` line per metric name, then one sample per label set. Counters and gauges
 * are one sample; histograms are cumulative `_bucket{le="…"}` samples up to `le="+Inf"`, `_sum`
 * and `_count`; summaries are `{quantile="…"}` samples, `_sum` and `_count`; a frequency is a
 * counter with its occurrence in a `key` label. Label values are escaped (`\\`, `\"`, `\n`);
 * names that Prometheus would refuse have their other characters replaced by `_`.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import type * as MetricKey from "effect/MetricKey"
import type * as MetricPair from "effect/MetricPair"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"

/**
 * The `content-type` of {@link render}'s text.
 *
 * @since 0.1.0
 * @category constants
 */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

const metricName = (name: string): string => {
  const safe = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[a-zA-Z_:]/.test(safe) ? safe : `_${safe}`
}

const labelName = (name: string): string => {
  const safe = name.replace(/[^a-zA-Z0-9_]/g, "_")
  return /^[a-zA-Z_]/.test(safe) ? safe : `_${safe}`
}

/**
 * A label value as Prometheus reads it back: backslash, double quote and newline escaped.
 *
 * @since 0.1.0
 * @category formatting
 */
export const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

/**
 * A sample value: `+Inf`, `-Inf` and `NaN` spelled as Prometheus does.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatValue = (value: number | bigint): string => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Number.POSITIVE_INFINITY) return "+Inf"
  if (value === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(value)
}

type Labels = ReadonlyArray<readonly [string, string]>

const formatLabels = (labels: Labels): string =>
  labels.length === 0
    ? ""
    : `{${labels.map(([key, value]) => `${labelName(key)}="${escapeLabelValue(value)}"`).join(",")}}`

const sample = (name: string, labels: Labels, value: number | bigint): string =>
  `${name}${formatLabels(labels)} ${formatValue(value)}`

type Kind = "counter" | "gauge" | "histogram" | "summary"

const kindOf = (state: MetricState.MetricState.Untyped): Kind | undefined =>
  MetricState.isCounterState(state) || MetricState.isFrequencyState(state)
    ? "counter"
    : MetricState.isGaugeState(state)
    ? "gauge"
    : MetricState.isHistogramState(state)
    ? "histogram"
    : MetricState.isSummaryState(state)
    ? "summary"
    : undefined

/** The sample lines of one metric and label set. */
const samples = (name: string, labels: Labels, state: MetricState.MetricState.Untyped): Array<string> => {
  if (MetricState.isCounterState(state)) return [sample(name, labels, state.count)]
  if (MetricState.isGaugeState(state)) return [sample(name, labels, state.value)]
  if (MetricState.isFrequencyState(state)) {
    return [...state.occurrences].map(([key, count]) => sample(name, [...labels, ["key", key]], count))
  }
  if (MetricState.isHistogramState(state)) {
    const buckets = state.buckets.map(([le, count]) =>
      sample(`${name}_bucket`, [...labels, ["le", formatValue(le)]], count)
    )
    const hasInf = state.buckets.some(([le]) => le === Number.POSITIVE_INFINITY)
    return [
      ...buckets,
      ...(hasInf ? [] : [sample(`${name}_bucket`, [...labels, ["le", "+Inf"]], state.count)]),
      sample(`${name}_sum`, labels, state.sum),
      sample(`${name}_count`, labels, state.count)
    ]
  }
  if (MetricState.isSummaryState(state)) {
    return [
      ...state.quantiles.flatMap(([q, value]) =>
        Option.isSome(value) ? [sample(name, [...labels, ["quantile", formatValue(q)]], value.value)] : []
      ),
      sample(`${name}_sum`, labels, state.sum),
      sample(`${name}_count`, labels, state.count)
    ]
  }
  return []
}

interface Family {
  readonly kind: Kind
  readonly help: string | undefined
  readonly lines: Array<string>
}

const labelsOf = (key: MetricKey.MetricKey.Untyped): Labels => key.tags.map((tag) => [tag.key, tag.value] as const)

/**
 * The given metric pairs as Prometheus text. Pairs sharing a name form one family (its first
 * pair's type; a pair of another type under the same name is left out, as Prometheus would
 * refuse the whole scrape).
 *
 * @since 0.1.0
 * @category formatting
 */
export const renderPairs = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  for (const pair of pairs) {
    const kind = kindOf(pair.metricState)
    if (kind === undefined) continue
    const name = metricName(pair.metricKey.name)
    const family = families.get(name) ?? { kind, help: Option.getOrUndefined(pair.metricKey.description), lines: [] }
    if (family.kind !== kind) continue
    family.lines.push(...samples(name, labelsOf(pair.metricKey), pair.metricState))
    families.set(name, family)
  }
  const out: Array<string> = []
  for (const [name, family] of [...families].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
    out.push(`# HELP ${name} ${escapeHelp(family.help ?? name)}`, `# TYPE ${name} ${family.kind}`, ...family.lines)
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`
}

/**
 * Every metric in Effect's global registry, now, as Prometheus text.
 *
 * @since 0.1.0
 * @category formatting
 */
export const render = (): string => renderPairs(Metric.unsafeSnapshot())
