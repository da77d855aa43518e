// bench/strategies/boost_fiber.cc: Boost.Fiber's channels (the Debian
// package libboost-fiber-dev) as the strategy "boost_fiber", the C/C++ peer
// of weft's tasks: the benchmark's participants run as fibers on Boost's
// work_stealing scheduler (struct chan_runtime below), as weft's run as
// tasks on its carriers. Built only when Boost.Fiber is found at configure
// time (meson option peers), and not under sanitizers; C++, seen from C
// through struct chan_strategy.
//
// The channels, as Boost has them (no wrapper logic on the hot path):
//   - capacity 0: boost::fibers::unbuffered_channel (a rendezvous: push
//     returns once a receiver took the value).
//   - capacity c >= 1: boost::fibers::buffered_channel, whose capacity must
//     be a power of two and which holds capacity - 1 elements. It gets the
//     smallest power of two p with p - 1 >= c: it holds p - 1 elements,
//     exactly c when c + 1 is a power of two (1, 3, 7, 63, 1023), else up
//     to about twice c. The benchmark's cases: 1 -> 1, 64 -> 127,
//     200 -> 255, 1024 -> 2047. Never less than c, as a Go program ported
//     to Boost would need: a program that relies on the room it asked for
//     (the seq case fills the channel to capacity from one fiber, then
//     drains it) deadlocks with less; the extra room is Boost's advantage
//     where the producers run ahead (pipeline cap:64, seedpool).
//   - close: Boost's own (channel_op_status::closed): sends fail at once,
//     receivers drain the buffer, then fail (-EPIPE); a sender blocked in
//     an unbuffered push whose value was not taken fails too. Its return
//     (0, or -EPIPE when already closed) reads is_closed() first: two
//     closes at once may both return 0 (the benchmark closes each channel
//     once).
//   - try_send / try_recv: try_push / try_pop (full or empty: -EAGAIN).
//     The unbuffered channel has neither: they are push_wait_until /
//     pop_wait_until with the deadline now, so a try on capacity 0
//     succeeds only if the partner is already there (-ETIMEDOUT there is
//     reported as -EAGAIN).
//   - send_until / recv_until: push_wait_until / pop_wait_until on
//     std::chrono::steady_clock, which is CLOCK_MONOTONIC (weft's clock).
//   - len: Boost's channels have no length query: 0 always.
// MPMC, blocking (a fiber parks in user space, the carrier thread sleeps
// when idle), no select. Because capacity is rounded and len is not
// known, the conformance and stress suites skip this strategy
// (CHAN_CAP_BENCH_ONLY); its channels are exercised by every benchmark run,
// which checks exactly-once delivery of every item.
//
// The runtime: one pool of P carrier threads for the whole process, P =
// WEFT_PROCS if set (> 0), else the online CPUs, as weft's carriers. Each
// thread installs work_stealing(P, suspend = true): a carrier with nothing
// to run sleeps on its condition variable until a fiber of its own is woken
// from another carrier (it steals only while awake), as weft's idle
// carriers park. Boost's default, suspend = false, has idle carriers spin
// on steal attempts without end; on this 2-core machine, shared, that made
// the pipeline cap:64 run 20x slower (2.4 s against 116 ms for 200k items,
// one run each), so it is opt-in: WEFT_FIBER_SPIN=1. Between benchmark
// runs every carrier sleeps on a std::condition_variable outside the
// scheduler, so the pool costs nothing while other strategies are measured
// (Boost's work_stealing scheduler can be installed once per process: its
// carrier table is static). A run's group: spawn records the n
// participants; the last spawn hands the group to the pool, where carrier
// 0 creates the n fibers (launch::post; the other carriers steal them while
// awake) and every carrier waits, as a fiber, until all n finished. The
// fibers wait at a gate (a fiber mutex and condition variable) that go
// opens; the main thread joins on a std::condition_variable. One group at
// a time (the runner's contract, strategy.h).
#include <boost/context/detail/fcontext.hpp>
#include <boost/fiber/algo/work_stealing.hpp>
#include <boost/fiber/buffered_channel.hpp>
#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/mutex.hpp>
#include <boost/fiber/operations.hpp>
#include <boost/fiber/unbuffered_channel.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <unistd.h>
#include <vector>

#include "boost_fiber.h"
#include "cxx_chan.h"
#include "strategy.h"
#include "wait.h"

namespace {

namespace bf = boost::fibers;
using status = bf::channel_op_status;

std::chrono::steady_clock::time_point now()
{
	return std::chrono::steady_clock::now();
}

std::chrono::steady_clock::time_point to_time(int64_t deadline)
{
	return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline));
}

int to_rc(status st)
{
	switch (st) {
	case status::success:
		return 0;
	case status::closed:
		return -EPIPE;
	case status::timeout:
		return -ETIMEDOUT;
	default: // full, empty
		return -EAGAIN;
	}
}

// the smallest power of two p with p - 1 >= c (c >= 1): see the top
size_t boost_capacity(size_t c)
{
	size_t p = 2;

	while (p - 1 < c)
		p *= 2;
	return p;
}

template <size_t N> struct chan final : cxx_chan::base {
	struct item {
		unsigned char b[N];
	};

	std::unique_ptr<bf::buffered_channel<item>> buf;
	std::unique_ptr<bf::unbuffered_channel<item>> unbuf;

	explicit chan(size_t cap)
	{
		if (cap == 0)
			unbuf.reset(new bf::unbuffered_channel<item>());
		else
			buf.reset(new bf::buffered_channel<item>(boost_capacity(cap)));
	}

	// one call on whichever channel this is, by mode: try, wait for
	// ever, or wait until the deadline. The unbuffered channel has no try:
	// its timed call with the deadline now, a timeout there being "full"
	// or "empty" (busy).
	template <typename Try, typename Wait, typename Until>
	static status call(int mode, int64_t deadline, Try try_op, Wait wait_op, Until until_op)
	{
		if (mode == SW_TRY)
			return try_op();
		if (deadline == SW_FOREVER)
			return wait_op();
		return until_op(to_time(deadline));
	}

	static status busy(status st, status as)
	{
		return st == status::timeout ? as : st;
	}

	int send(const void *elem, int mode, int64_t deadline) override
	{
		item it;
		status st;

		if (esz)
			std::memcpy(it.b, elem, esz);
		if (buf)
			st = call(
				mode, deadline, [&] { return buf->try_push(it); },
				[&] { return buf->push(it); },
				[&](auto t) { return buf->push_wait_until(it, t); });
		else
			st = call(
				mode, deadline,
				[&] { return busy(unbuf->push_wait_until(it, now()), status::full); },
				[&] { return unbuf->push(it); },
				[&](auto t) { return unbuf->push_wait_until(it, t); });
		return to_rc(st);
	}

	int recv(void *elem, int mode, int64_t deadline) override
	{
		item it;
		status st;

		if (buf)
			st = call(
				mode, deadline, [&] { return buf->try_pop(it); },
				[&] { return buf->pop(it); },
				[&](auto t) { return buf->pop_wait_until(it, t); });
		else
			st = call(
				mode, deadline,
				[&] { return busy(unbuf->pop_wait_until(it, now()), status::empty); },
				[&] { return unbuf->pop(it); },
				[&](auto t) { return unbuf->pop_wait_until(it, t); });
		if (st == status::success && esz)
			std::memcpy(elem, it.b, esz);
		return to_rc(st);
	}

	int close() override
	{
		bool was = buf ? buf->is_closed() : unbuf->is_closed();

		if (buf)
			buf->close();
		else
			unbuf->close();
		return was ? -EPIPE : 0;
	}

	size_t len() const override
	{
		return 0; // Boost's channels have no length query
	}
};

using ops = cxx_chan::table<chan, true>;

// ---- the runtime: participants as fibers on work_stealing ---------------

struct group {
	unsigned n = 0;
	std::vector<std::pair<void (*)(void *), void *>> work;
	// the fibers' side: the gate, and how many finished
	bf::mutex fm;
	bf::condition_variable fcv;
	bool open = false;
	unsigned finished = 0;
	// the main thread's side (notified with m held: once the main thread
	// sees the state it waits for, it may free the group)
	std::mutex m;
	std::condition_variable cv;
	bool created = false;
	bool last_out = false; // the last fiber no longer touches the group
	unsigned left = 0;     // carriers that left the group
};

struct pool {
	std::mutex m;
	std::condition_variable cv;
	unsigned nthreads = 0, registered = 0;
	bool spin = false; // WEFT_FIBER_SPIN: idle carriers spin (Boost's default)
	uint64_t epoch = 0;
	group *g = nullptr;
};

// never freed: its carriers sleep on its condition variable until exit
pool *the_pool;

unsigned procs()
{
	const char *e = std::getenv("WEFT_PROCS");
	long v = e ? std::atol(e) : 0;

	if (v > 0)
		return v > 256 ? 256 : static_cast<unsigned>(v);
	v = sysconf(_SC_NPROCESSORS_ONLN);
	return v > 0 ? static_cast<unsigned>(v) : 1;
}

void fiber_main(group *g, void (*fn)(void *), void *arg)
{
	{
		std::unique_lock<bf::mutex> l(g->fm);
		g->fcv.wait(l, [g] { return g->open; });
	}
	fn(arg);
	bool last;
	{
		std::unique_lock<bf::mutex> l(g->fm);
		last = ++g->finished == g->n;
	}
	if (last) {
		g->fcv.notify_all(); // the carriers waiting for the group's end
		std::lock_guard<std::mutex> lk(g->m);
		g->last_out = true;
		g->cv.notify_all();
	}
}

void carrier_main(pool *p, unsigned k)
{
	uint64_t seen = 0;

	bf::use_scheduling_algorithm<bf::algo::work_stealing>(p->nthreads, !p->spin);
	{
		// every carrier's scheduler is in Boost's table before any steals
		std::unique_lock<std::mutex> lk(p->m);
		if (++p->registered == p->nthreads)
			p->cv.notify_all();
	}
	for (;;) {
		group *g;
		{
			std::unique_lock<std::mutex> lk(p->m);
			p->cv.wait(lk, [&] { return p->epoch != seen; });
			seen = p->epoch;
			g = p->g;
		}
		if (k == 0) {
			for (auto &w : g->work)
				bf::fiber(bf::launch::post, fiber_main, g, w.first, w.second).detach();
			std::lock_guard<std::mutex> lk(g->m);
			g->created = true;
			g->cv.notify_all();
		}
		{
			// as a fiber: the scheduler runs (and steals) meanwhile
			std::unique_lock<bf::mutex> l(g->fm);
			g->fcv.wait(l, [g] { return g->finished == g->n; });
		}
		std::lock_guard<std::mutex> lk(g->m);
		g->left++;
		g->cv.notify_all();
	}
}

pool *get_pool()
{
	static std::once_flag once;

	std::call_once(once, [] {
		pool *p = new pool;

		const char *spin = std::getenv("WEFT_FIBER_SPIN");

		p->nthreads = procs();
		p->spin = spin && std::atoi(spin) > 0;
		for (unsigned k = 0; k < p->nthreads; k++)
			std::thread(carrier_main, p, k).detach();
		std::unique_lock<std::mutex> lk(p->m);
		p->cv.wait(lk, [p] { return p->registered == p->nthreads; });
		the_pool = p;
	});
	return the_pool;
}

void *fg_create(unsigned n)
{
	group *g = new (std::nothrow) group;

	if (!g)
		return nullptr;
	g->n = n;
	try {
		g->work.reserve(n);
		get_pool();
	} catch (...) {
		delete g;
		return nullptr;
	}
	return g;
}

int fg_spawn(void *gp, void (*fn)(void *), void *arg)
{
	group *g = static_cast<group *>(gp);

	if (g->work.size() >= g->n)
		return -EINVAL;
	g->work.emplace_back(fn, arg);
	if (g->work.size() < g->n)
		return 0;
	// the last one: the pool creates the fibers now, before go
	pool *p = the_pool;
	{
		std::lock_guard<std::mutex> lk(p->m);
		p->g = g;
		p->epoch++;
		p->cv.notify_all();
	}
	std::unique_lock<std::mutex> lk(g->m);
	g->cv.wait(lk, [g] { return g->created; });
	return 0;
}

void fg_go(void *gp)
{
	group *g = static_cast<group *>(gp);

	{
		std::unique_lock<bf::mutex> l(g->fm);
		g->open = true;
	}
	g->fcv.notify_all();
}

int fg_join(void *gp, int64_t deadline)
{
	group *g = static_cast<group *>(gp);
	auto done = [g] {
		return g->n == 0 || (g->last_out && g->left == the_pool->nthreads);
	};
	std::unique_lock<std::mutex> lk(g->m);

	if (deadline == SW_FOREVER)
		g->cv.wait(lk, done);
	else if (!g->cv.wait_until(lk, to_time(deadline), done))
		return -ETIMEDOUT;
	return 0;
}

void fg_destroy(void *gp)
{
	delete static_cast<group *>(gp);
}

const chan_runtime fibers_runtime = {
	"boost fibers", fg_create, fg_spawn, fg_go, fg_join, fg_destroy,
};

} // namespace

extern "C" const chan_strategy chan_strategy_boost_fiber =
	CXX_CHAN_TABLE("boost_fiber",
		       CHAN_CAP_UNBUFFERED | CHAN_CAP_BLOCKING | CHAN_CAP_MPMC | CHAN_CAP_BENCH_ONLY,
		       ops, &fibers_runtime);

// ---- the sync family's fiber cases (boost_fiber.h) ----------------------
//
// A driver fiber on the pool (a group of one) runs each case; the fibers it
// starts get Boost's default stack (fixedsize_stack of default_size():
// 128 KiB here; weft's tasks default to 64 KiB).
//   spawn:   the driver starts items fibers that each add 1 to a counter;
//            the last one wakes the driver. Boost posts a new fiber to the
//            spawner's carrier, and a sleeping carrier does not steal, so
//            the driver yields whenever 128 of its fibers have not run yet
//            (or every `every` starts, as weft's yield_every:64 case);
//            without that, a million fibers would wait with their stacks.
//            With 1024 in flight instead of 128 (128 MiB of 128 KiB
//            stacks), a fiber cost 36 us of CPU instead of 0.9 us: a
//            working set past the caches, and its page faults.
//   handoff: the driver and one fiber ping-pong items / 2 values over two
//            unbuffered channels.
//   parked:  the driver starts items fibers that each pop from one
//            unbuffered channel; once all have started, it closes it and
//            waits until every pop returned closed.
namespace {

struct sync_job {
	uint64_t items = 0;
	unsigned every = 1;
	std::atomic<uint64_t> count{ 0 }, started{ 0 };
	bf::unbuffered_channel<uint64_t> a, z;
	bf::mutex m;
	bf::condition_variable cv;
	unsigned flags = 0;
	int err = 0;
};

// raise flag bit f; notified with m held, so once the driver sees the bit
// the signaller no longer touches the job
void raise_flag(sync_job *j, unsigned f)
{
	std::unique_lock<bf::mutex> l(j->m);
	j->flags |= f;
	j->cv.notify_all();
}

void wait_flag(sync_job *j, unsigned f)
{
	std::unique_lock<bf::mutex> l(j->m);
	j->cv.wait(l, [j, f] { return (j->flags & f) != 0; });
}

void spawn_nop(sync_job *j)
{
	if (j->count.fetch_add(1, std::memory_order_relaxed) + 1 == j->items)
		raise_flag(j, 1);
}

void pong(sync_job *j)
{
	uint64_t v;

	while (j->a.pop(v) == status::success) {
		j->count.fetch_add(2, std::memory_order_relaxed);
		if (j->z.push(v) != status::success)
			break;
	}
	raise_flag(j, 1);
}

void parked(sync_job *j)
{
	uint64_t v;

	if (j->started.fetch_add(1, std::memory_order_relaxed) + 1 == j->items)
		raise_flag(j, 1);
	if (j->a.pop(v) == status::closed &&
	    j->count.fetch_add(1, std::memory_order_relaxed) + 1 == j->items)
		raise_flag(j, 2);
}

template <int Kind> void driver(void *p)
{
	sync_job *j = static_cast<sync_job *>(p);

	if (Kind == BOOST_FIBER_SPAWN) {
		for (uint64_t i = 0; i < j->items; i++) {
			bf::fiber(spawn_nop, j).detach();
			if ((j->every > 1 && i % j->every == j->every - 1) ||
			    i + 1 - j->count.load(std::memory_order_relaxed) >= 128)
				boost::this_fiber::yield();
		}
		wait_flag(j, 1);
	} else if (Kind == BOOST_FIBER_HANDOFF) {
		uint64_t v;

		bf::fiber(pong, j).detach();
		for (uint64_t i = 0; i < j->items / 2; i++)
			if (j->a.push(i) != status::success || j->z.pop(v) != status::success ||
			    v != i) {
				j->err = -EPROTO;
				break;
			}
		j->a.close();
		wait_flag(j, 1);
	} else {
		for (uint64_t i = 0; i < j->items; i++)
			bf::fiber(parked, j).detach();
		wait_flag(j, 1);
		j->a.close();
		wait_flag(j, 2);
	}
}



// Boost.Context's fcontext, bare: this thread and a context on a stack of
// its own jump there and back (sync/task_switch beside weft's own switch)
namespace bcd = boost::context::detail;

struct switch_job {
	uint64_t count = 0;
	unsigned sites = 1;
};

// (as sync.c's switch_loop: both sides switch from here with sites 1)
__attribute__((noinline)) bcd::fcontext_t switch_loop(bcd::fcontext_t peer, switch_job *j,
						      uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		j->count++;
		peer = bcd::jump_fcontext(peer, j).fctx;
	}
	return peer;
}

void switch_entry(bcd::transfer_t t)
{
	switch_job *j = static_cast<switch_job *>(t.data);

	if (j->sites == 1)
		switch_loop(t.fctx, j, UINT64_MAX);
	for (;;) {
		j->count++;
		t = bcd::jump_fcontext(t.fctx, j);
	}
}

int raw_switch(uint64_t items, unsigned sites, uint64_t *count)
{
	const size_t size = 64 << 10;
	void *stack = malloc(size);
	switch_job j;

	if (!stack)
		return -ENOMEM;
	j.sites = sites;
	bcd::fcontext_t co = bcd::make_fcontext(static_cast<char *>(stack) + size, size, switch_entry);
	if (sites == 1) {
		switch_loop(co, &j, items / 2);
	} else {
		for (uint64_t i = 0; i < items / 2; i++) {
			j.count++;
			co = bcd::jump_fcontext(co, &j).fctx;
		}
	}
	free(stack); // never resumed again
	*count = j.count;
	return 0;
}

} // namespace

extern "C" int boost_fiber_sync_run(enum boost_fiber_sync_kind kind, uint64_t items,
				    unsigned every, uint64_t *count)
{
	if (kind == BOOST_CONTEXT_SWITCH)
		return raw_switch(items, every, count);
	{
	void (*fn)(void *) = kind == BOOST_FIBER_SPAWN	   ? driver<BOOST_FIBER_SPAWN>
			     : kind == BOOST_FIBER_HANDOFF ? driver<BOOST_FIBER_HANDOFF>
							   : driver<BOOST_FIBER_PARKED>;
	int rc;

	*count = 0;
	if (items == 0)
		return 0;
	try {
		sync_job j;
		void *g = fg_create(1);

		if (!g)
			return -ENOMEM;
		j.items = items;
		j.every = every;
		if ((rc = fg_spawn(g, fn, &j)) == 0) {
			fg_go(g);
			rc = fg_join(g, SW_FOREVER);
		}
		fg_destroy(g);
		*count = j.count.load();
		return rc ? rc : j.err;
	} catch (...) {
		return -ENOMEM;
	}
	}
}
