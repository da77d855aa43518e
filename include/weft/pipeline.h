/* weft/pipeline.h: pipelines, fan-out and fan-in (the seed's assembly
 * line as a library).
 *
 * A pipeline is a set of stages joined by channels: sources (fn called once
 * per worker, emitting any number of elements), stages (fn called once per
 * input element, emitting 0..n outputs), sinks (fn called once per input
 * element), fan_out (n workers, each with its own output channel) and
 * fan_in (n channels merged into one). Each has 1..N workers. Every worker
 * watches the pipeline's context (weft_pipeline_ctx): once it is done (the
 * first failure, weft_pipeline_cancel, or the parent context), every
 * worker returns promptly, blocked ones included (their receives and
 * emits wake). A worker blocked inside the caller's fn is not interrupted:
 * fn may look at weft_emit_ctx(out) itself.
 *
 * Lifetime: a stage closes its output channel once every worker of it has
 * returned (fan_out: each output once its own worker has); a stage whose
 * input is closed and drained ends. So closing flows down the line:
 * sources return, their output closes, the next stage drains it and ends,
 * and so on. weft_pipeline_wait joins every worker (nothing of the
 * pipeline is left running after it, threads joined, tasks returned).
 *
 * Errors: the first nonzero result of any fn is the pipeline's error: it
 * is recorded, then the context is canceled with it as cause;
 * -ECANCELED / -ETIMEDOUT results after that never replace it. wait
 * returns 0 (everything ran to its end), that first failure, or the
 * context's error (canceled or timed out before the end).
 *
 * Workers: tasks (weft/task.h) by default, or threads (joinable, named
 * "stage/i") after weft_pipeline_set_tasks(p, 0); the stage loop is the
 * same either way. Chosen by measurement (bench `pipeline` family, 2-core
 * VM): a hand-off between tasks is a switch in user space, between threads
 * a futex sleep and wake-up, so the seed pipeline ran 15x (unbuffered) and
 * 20x (capacity 64) faster as tasks, see README.md, "Pipelines". Use
 * threads when fns block outside weft for long (blocking I/O, sleep(3)):
 * a task doing so holds its carrier (the runtime's monitor then adds
 * carriers, task.h). weft_sleep and every weft call park a task. Where
 * tasks are not supported (weft_go: -ENOSYS) workers are threads.
 *
 * A fn that ends its thread. A fn that calls pthread_exit, or whose thread
 * is canceled (pthread_cancel, acted on at a cancellation point inside the
 * fn; a task worker's thread is its carrier), never returns. The pipeline
 * counts that call as a failed fn, by the rule above: the stage's failures
 * and workers_died go up by one, and -EOWNERDEAD is the pipeline's error if
 * it is the first (the context is canceled with it). The item is not
 * taken again. The worker is replaced in its slot (same index, same
 * output), so the stage keeps its worker count and its output stays open
 * until its workers end; a source worker is not replaced (its fn runs
 * once per worker: a second run would emit again). wait joins every
 * thread, the dead one included. weft notices the end from a thread-
 * specific-data destructor after glibc's unwinding, whatever the fn was
 * compiled with; weft's own waits are not cancellation points. A fn that
 * crashes (SIGSEGV, abort, ...) ends the whole process, like an
 * unrecovered panic in Go: weft does not catch signals to recover.
 *
 * Ordered stages (opts.ordered): N workers, outputs in input order (the
 * outputs of one input together, in emit order). Reorder window: at most
 * `window` inputs (default 64 x the most workers: 512 for 8) between the
 * oldest whose outputs are not yet sent and the newest taken: when one
 * item is slow, the others go on until the window is full, then wait, so
 * memory stays bounded (window x the outputs of one input). Workers whose
 * items are quick (under 10 us) take up to min(16, window / (2 x workers))
 * inputs at a time (one hand-off of the numbering between workers per
 * batch); slower items go one at a time.
 *
 * Scaling (opts.max_workers > workers): while the stage's buffered input
 * stays more than half full (two looks WEFT_STAGE_SCALE_NS apart), a worker
 * starts another, up to max_workers; a worker above `workers` that waits
 * for input longer than opts.idle_ns (default WEFT_STAGE_IDLE_NS) retires.
 * The stats show the count now and how many were added and retired.
 *
 * Concurrency: the setup calls (source, stage, sink, fan_out, fan_in,
 * set_tasks) must not race each other; stats, ctx and cancel may be called
 * by any thread at any time; wait from one thread (a second wait returns
 * the same result); destroy is the last call. Setup calls may be made
 * while earlier stages already run (each starts its workers at once).
 */
#ifndef WEFT_PIPELINE_H
#define WEFT_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include <weft/chan.h>
#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_pipeline weft_pipeline_t;
typedef struct weft_emit weft_emit_t; /* a worker's way to its output */

/* Send one element to the worker's output (copied). Blocks while the
 * output is full (under the BLOCK policy), watching the pipeline's
 * context. Returns 0, or the context's error once the pipeline is done
 * (then nothing was sent: fn should return). Into a DROP_NEWEST output
 * that is full it returns 0 and the element is counted as dropped (in the
 * channel's stats). In an ordered stage the element is held until every
 * earlier input's outputs are sent. Only from the fn it was given to. */
WEFT_API int weft_emit(weft_emit_t *e, const void *elem);
/* A context for fn's own blocking calls: the worker's child of the
 * pipeline's context (done when that is; its own, so that workers do not
 * contend on one context's lock), valid while fn runs. */
WEFT_API weft_ctx_t *weft_emit_ctx(const weft_emit_t *e);
/* Which worker of its stage calls (0 .. workers-1; with scaling, up to
 * max_workers-1): lets a source with N workers split its work. */
WEFT_API unsigned weft_emit_worker(const weft_emit_t *e);

/* 0: go on; nonzero: fails the pipeline (the first such is its error). */
typedef int (*weft_source_fn)(weft_emit_t *out, void *user);
typedef int (*weft_stage_fn)(weft_emit_t *out, const void *in, void *user);
typedef int (*weft_sink_fn)(const void *in, void *user);

/* How long an extra worker (above `workers`) may wait for input before it
 * retires, by default; and the interval between the two looks at a
 * backed-up input that start another worker. */
#define WEFT_STAGE_IDLE_NS 20000000LL /* 20 ms */
#define WEFT_STAGE_SCALE_NS 1000000LL /* 1 ms */

typedef struct weft_stage_opts { /* zeroed fields take defaults */
	const char *name;     /* in stats and thread names (copied, 31 bytes) */
	unsigned workers;     /* 0: 1 (fan_out: ignored, n) */
	unsigned max_workers; /* > workers: scale up while the input stays backed up */
	int ordered;          /* outputs in input order, whatever the workers */
	size_t out_elem_size; /* size of an output element; 0: the input's (a source must give it) */
	size_t out_capacity;  /* output channel capacity; 0: unbuffered */
	int overflow;         /* the output channel's WEFT_OVERFLOW_* policy */
	const char *spill_dir;    /* SPILL: see weft_chan_opts_t */
	uint64_t spill_max_bytes; /* SPILL: see weft_chan_opts_t */
	size_t window;        /* ordered: the reorder window (see above); 0: default */
	int64_t idle_ns;      /* scaling: retire an extra worker idle this long; 0: default */
} weft_stage_opts_t;

/* A pipeline whose context is a child of parent (NULL: background).
 * Returns 0, -EINVAL (out NULL) or -ENOMEM. */
WEFT_API int weft_pipeline_create(weft_pipeline_t **out, weft_ctx_t *parent);

/* Workers of the stages added after this call are tasks (on nonzero, the
 * default) or threads. 0, or -EINVAL (NULL). */
WEFT_API int weft_pipeline_set_tasks(weft_pipeline_t *p, int on);

/* Done on the first failure, cancel, or the parent being done. Owned by
 * the pipeline (valid until destroy); do not release it. NULL: NULL. */
WEFT_API weft_ctx_t *weft_pipeline_ctx(weft_pipeline_t *p);

/* Each setup call below starts the workers at once and returns 0, or:
 * -EINVAL: p, fn or a channel NULL, out NULL, an element size mismatch
 *   (fan_in's inputs differ; a source without out_elem_size), workers or
 *   max_workers inconsistent (max_workers below workers is taken as
 *   workers; fan_out with ordered or max_workers), a bad overflow policy,
 *   or a call after wait. Nothing was started and nothing else changed
 *   (the pipeline is not canceled).
 * -ENOMEM: no memory for the stage or its channels (nothing started).
 * -EAGAIN (or another error of pthread_create / weft_go): a worker could
 *   not start after others of this stage had: the pipeline is then failed
 *   with that error (recorded and its context canceled, as a failing fn).
 * Output channels are created by the pipeline and freed by destroy; input
 * channels may be the caller's (they must outlive the pipeline) or the
 * pipeline's. The caller may read the last output itself, e.g. with
 * weft_chan_recv_ctx(out, &v, weft_pipeline_ctx(p)). */
WEFT_API int weft_pipeline_source(weft_pipeline_t *p, weft_chan_t **out, weft_source_fn fn,
				  void *user, const weft_stage_opts_t *o);
WEFT_API int weft_pipeline_stage(weft_pipeline_t *p, weft_chan_t *in, weft_chan_t **out,
				 weft_stage_fn fn, void *user, const weft_stage_opts_t *o);
WEFT_API int weft_pipeline_sink(weft_pipeline_t *p, weft_chan_t *in, weft_sink_fn fn, void *user,
				const weft_stage_opts_t *o);
/* n workers (n >= 1), worker i emitting to its own outs[i] (the seed's
 * fanOut); outs[i] closes when worker i returns. */
WEFT_API int weft_pipeline_fan_out(weft_pipeline_t *p, weft_chan_t *in, weft_chan_t **outs,
				   size_t n, weft_stage_fn fn, void *user,
				   const weft_stage_opts_t *o);
/* Merge n channels (n >= 1) of one element size into *out (the seed's
 * FanIn[T]): one forwarding worker per input; *out closes once every input
 * is closed and drained (or the pipeline is done). o may be NULL; only
 * name, out_capacity, overflow and the spill fields apply. */
WEFT_API int weft_pipeline_fan_in(weft_pipeline_t *p, weft_chan_t *const *ins, size_t n,
				  weft_chan_t **out, const weft_stage_opts_t *o);

/* Cancel the pipeline's context (-ECANCELED unless already done): every
 * worker returns promptly. Never blocks. 0, or -EINVAL (NULL). */
WEFT_API int weft_pipeline_cancel(weft_pipeline_t *p);

/* Join every worker; returns 0, the first failure, or the context's error
 * (see above). Then the context is canceled (as Go's errgroup does at
 * Wait) and later setup calls are -EINVAL. A second wait returns the same
 * result. NULL: -EINVAL. */
WEFT_API int weft_pipeline_wait(weft_pipeline_t *p);

/* Without wait: cancel and join. Frees the channels the pipeline created
 * and the context. NULL is a no-op. */
WEFT_API void weft_pipeline_destroy(weft_pipeline_t *p);

/* ---- metrics ---- */

enum { WEFT_STAGE_SOURCE = 1, WEFT_STAGE_STAGE, WEFT_STAGE_SINK, WEFT_STAGE_FAN_OUT,
       WEFT_STAGE_FAN_IN };

typedef struct weft_stage_stats {
	char name[32];
	int kind;               /* WEFT_STAGE_* */
	uint64_t in;            /* elements received */
	uint64_t out;           /* elements emitted (accepted by the output) */
	uint64_t failures;      /* fn calls that returned nonzero (not counting
				 * -ECANCELED/-ETIMEDOUT after the pipeline was done) */
	unsigned workers;       /* running now */
	unsigned min_workers, max_workers;
	uint64_t workers_added;   /* by scaling */
	uint64_t workers_retired; /* by scaling */
	uint64_t workers_died;    /* workers whose fn ended their thread (each
				   * replaced but in sources; see "A fn that
				   * ends its thread") */
	uint64_t busy_ns;       /* summed over workers: time alive and not
				 * waiting for input or for room in the output
				 * (an estimate: one blocking wait in 8 is timed) */
	size_t in_len;          /* the input's weft_chan_len (fan_in: the sum) */
	size_t out_len;         /* the output's (fan_out: the sum) */
} weft_stage_stats_t;

/* Fill out[0 .. min(n, stages)) in the order the stages were added and
 * return the number of stages (so n 0 asks how many). One call, no lock
 * held against the workers: each figure is a relaxed snapshot, cheap
 * enough to export every second. -EINVAL: p NULL, or out NULL with n > 0. */
WEFT_API long weft_pipeline_stats(weft_pipeline_t *p, weft_stage_stats_t *out, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_PIPELINE_H */
