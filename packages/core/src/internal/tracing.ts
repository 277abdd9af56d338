/**
 * Spans on the per-call paths. Every producer asks first whether a tracer records at all: with
 * tracing off, or with Effect's built-in tracer (whose spans nobody reads), nothing is allocated.
 * When one does, spans are started and ended by hand: what `Effect.useSpan` does (the parent from
 * context, the fiber's span annotations and links, the clock's time) without the effects around
 * it, which cost more than the span itself on a call that takes tens of microseconds.
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"

type AnyFiber = Fiber.RuntimeFiber<unknown, unknown>

const nativeTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/**
 * The fiber's tracer when it records spans: tracing is on and it is not Effect's built-in one.
 *
 * @internal
 */
export const recordingTracer = (fiber: AnyFiber): Tracer.Tracer | undefined =>
  fiber.currentTracer === nativeTracer || !fiber.getFiberRef(FiberRef.currentTracerEnabled)
    ? undefined
    : fiber.currentTracer

/**
 * The fiber's current span, when a tracer records events on it.
 *
 * @internal
 */
export const activeSpan = (fiber: AnyFiber): Tracer.Span | undefined => {
  if (recordingTracer(fiber) === undefined) return undefined
  const span = fiber.currentSpan
  return span !== undefined && span._tag === "Span" ? span : undefined
}

/** Now, as spans want it; 0 when the fiber has span timing off (as `Effect.useSpan` does). */
const spanTime = (fiber: AnyFiber): bigint =>
  fiber.getFiberRef(FiberRef.currentTracerTimingEnabled)
    ? Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeNanos()
    : 0n

/** The current span as a parent, skipping spans that asked not to propagate (as Effect does). */
const parentOf = (fiber: AnyFiber): Option.Option<Tracer.AnySpan> => {
  let parent = Context.getOption(fiber.currentContext, Tracer.ParentSpan)
  while (parent._tag === "Some" && Context.get(parent.value.context, Tracer.DisablePropagation)) {
    parent = parent.value._tag === "Span" ? parent.value.parent : Option.none()
  }
  return parent
}

const noLinks: ReadonlyArray<Tracer.SpanLink> = []

/**
 * Starts a span on `tracer` as `Effect.useSpan` would: its parent `parent`, or the current span.
 * End it with {@link endSpan}.
 *
 * @internal
 */
export const startSpan = (
  fiber: AnyFiber,
  tracer: Tracer.Tracer,
  name: string,
  kind: Tracer.SpanKind,
  parent?: Tracer.AnySpan
): Tracer.Span => {
  const links = fiber.getFiberRef(FiberRef.currentTracerSpanLinks)
  const span = tracer.span(
    name,
    parent === undefined ? parentOf(fiber) : Option.some(parent),
    Context.empty(),
    Chunk.isEmpty(links) ? noLinks : Chunk.toReadonlyArray(links),
    spanTime(fiber),
    kind
  )
  const annotations = fiber.getFiberRef(FiberRef.currentTracerSpanAnnotations)
  if (HashMap.size(annotations) > 0) HashMap.forEach(annotations, (value, key) => span.attribute(key, value))
  return span
}

/**
 * Ends a span started by {@link startSpan} (once: a span already ended is left as it is).
 *
 * @internal
 */
export const endSpan = (fiber: AnyFiber, span: Tracer.Span, exit: Exit.Exit<unknown, unknown>): void => {
  if (span.status._tag === "Ended") return
  span.end(spanTime(fiber), exit)
}

/**
 * `f` inside a span named `name` (its parent the current span, and the current span for `f`)
 * when a tracer records, else `f` alone: no span is made, no attribute built.
 *
 * @internal
 */
export const withSpan = <A, E, R>(
  name: string,
  kind: Tracer.SpanKind,
  f: (span: Tracer.Span | undefined) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime((fiber) => {
    const tracer = recordingTracer(fiber)
    if (tracer === undefined) return f(undefined)
    const span = startSpan(fiber, tracer, name, kind)
    return inSpan(fiber, span, f(span), (exit) => endSpan(fiber, span, exit))
  })

/**
 * `effect` with `span` as its current span, then `end` with its exit: `Effect.withParentSpan` and
 * `Effect.onExit` in one uninterruptible region, the context swapped in and back in one step each
 * (Effect's own go through `acquireUseRelease`, a dozen steps per call).
 *
 * @internal
 */
export const inSpan = <A, E, R>(
  fiber: AnyFiber,
  span: Tracer.Span,
  effect: Effect.Effect<A, E, R>,
  end: (exit: Exit.Exit<A, E>) => void
): Effect.Effect<A, E, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(
      FiberRef.getAndSet(FiberRef.currentContext, Context.add(fiber.currentContext, Tracer.ParentSpan, span)),
      (previous) =>
        Effect.onExit(
          restore(effect),
          // The context back first: a tracer whose `end` throws must not leave the span current.
          (exit) => Effect.zipRight(FiberRef.set(FiberRef.currentContext, previous), Effect.sync(() => end(exit)))
        )
    )
  )

/**
 * The time of an event, as a span wants it.
 *
 * @internal
 */
export const eventTime = (millis: number): bigint => BigInt(Math.round(millis)) * 1_000_000n

/**
 * Attempt spans that stand for the HTTP request the attempt sends: the transport adds its
 * request and response attributes to such a span instead of making a child of its own.
 */
const requestSpans = new WeakSet<Tracer.Span>()

/**
 * Marks `span` as the span of the (one) HTTP request made within it.
 *
 * @internal
 */
export const offerForRequest = (span: Tracer.Span): void => {
  requestSpans.add(span)
}

/**
 * The current span if it was offered for the request about to be sent (and not taken yet).
 *
 * @internal
 */
export const takeForRequest = (fiber: AnyFiber): Tracer.Span | undefined => {
  const span = fiber.currentSpan
  return span !== undefined && span._tag === "Span" && requestSpans.delete(span) ? span : undefined
}
