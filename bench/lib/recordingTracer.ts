/**
 * A tracer that keeps what an SDK span keeps (attributes, events, status) and exports nothing: what the
 * `telemetry` benchmark and the profiling aid trace with; and one whose spans keep nothing, to tell the
 * cost of making spans from the cost of recording them.
 */
import * as Tracer from "effect/Tracer"

export const recordingTracer: Tracer.Tracer = Tracer.make({
  span: (name, parent, context, links, startTime, kind) => {
    const attributes = new Map<string, unknown>()
    const events: Array<readonly [string, bigint, Record<string, unknown> | undefined]> = []
    const span: Tracer.Span = {
      _tag: "Span",
      name,
      spanId: Math.random().toString(16).slice(2),
      traceId: parent._tag === "Some" ? parent.value.traceId : Math.random().toString(16).slice(2),
      parent,
      context,
      status: { _tag: "Started", startTime },
      attributes,
      links: [...links],
      sampled: true,
      kind,
      end: (endTime, exit) => {
        ;(span as { status: Tracer.SpanStatus }).status = { _tag: "Ended", startTime, endTime, exit }
      },
      attribute: (key, value) => {
        attributes.set(key, value)
      },
      event: (eventName, time, eventAttributes) => {
        events.push([eventName, time, eventAttributes])
      },
      addLinks: () => {}
    }
    return span
  },
  context: (f) => f()
})

const ignore = () => {}
/** Spans that record nothing (one status object shared by all). */
export const noopTracer: Tracer.Tracer = Tracer.make({
  span: (name, parent, context, links, startTime, kind) => ({
    _tag: "Span",
    name,
    spanId: "0000000000000001",
    traceId: "00000000000000000000000000000001",
    parent,
    context,
    status: { _tag: "Started", startTime },
    attributes: noAttributes,
    links,
    sampled: true,
    kind,
    end: ignore,
    attribute: ignore,
    event: ignore,
    addLinks: ignore
  }),
  context: (f) => f()
})

const noAttributes: ReadonlyMap<string, unknown> = new Map()
