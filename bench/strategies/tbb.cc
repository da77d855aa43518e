// bench/strategies/tbb.cc: oneTBB's tbb::concurrent_bounded_queue (the
// Debian package libtbb-dev) as the strategy "tbb". Built only when TBB is
// found at configure time (meson option peers); C++, seen from C through
// struct chan_strategy.
//
// The queue is bounded (set_capacity) and blocks in push and pop (TBB's
// concurrent_monitor: spin, then sleep). What the wrapper adds:
//   - close: TBB has abort(), which makes the pushes and pops waiting at
//     that moment throw tbb::user_abort, but no closed state. A state word
//     (closed bit, 2 x sends in progress, as in ck_ring.c) gives close its
//     meaning; a count of the threads inside a blocking push or pop lets
//     close call abort() until every one of them has left (one that enters
//     just after an abort is caught by the next). After close, receivers
//     drain with try_pop, wait for the sends in progress, then -EPIPE.
//   - timed calls: TBB has no timed push or pop, so send_until and
//     recv_until poll try_push / try_pop, napping 20 us between tries; the
//     benchmark scenarios never use them (only the conformance tests do).
//   - elements of any size up to 256 bytes: the queue is instantiated for
//     size classes 8, 16, 32, 64, 128 and 256 bytes.
// Buffered only (capacity >= 1; TBB's capacity 0 is not a rendezvous),
// MPMC, FIFO, no select.
#include <tbb/concurrent_queue.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>

#include "cxx_chan.h"
#include "strategy.h"
#include "wait.h"

namespace {

template <size_t N> struct chan final : cxx_chan::base {
	struct item {
		unsigned char b[N];
	};

	tbb::concurrent_bounded_queue<item> q;
	size_t cap;
	// bit 0: closed; the rest: 2 x sends in progress
	alignas(64) std::atomic<unsigned long> state{ 0 };
	// threads inside a blocking push or pop (close aborts until none)
	alignas(64) std::atomic<unsigned> inside{ 0 };

	explicit chan(size_t c) : cap(c)
	{
		q.set_capacity(static_cast<std::ptrdiff_t>(c));
	}

	// a blocking push or pop; false if close aborted it (or came first)
	template <typename F> bool blocking(F call)
	{
		// seq_cst: our count before our look at the closed bit; pairs
		// with close's fetch_or then load of inside
		inside.fetch_add(1);
		if (state.load() & 1) {
			inside.fetch_sub(1);
			return false;
		}
		bool ok = true;
		try {
			call();
		} catch (const tbb::user_abort &) {
			ok = false;
		}
		inside.fetch_sub(1);
		return ok;
	}

	int send(const void *elem, int mode, int64_t deadline) override
	{
		item it{};
		int rc = 0;
		unsigned steps = 0;

		if (esz)
			std::memcpy(it.b, elem, esz);
		// seq_cst: pairs with the fetch_or in close
		if (state.fetch_add(2) & 1) {
			rc = -EPIPE;
		} else if (mode == SW_TRY) {
			rc = q.try_push(it) ? 0 : -EAGAIN;
		} else if (deadline == SW_FOREVER) {
			rc = blocking([&] { q.push(it); }) ? 0 : -EPIPE;
		} else {
			while (!q.try_push(it)) {
				if (state.load(std::memory_order_relaxed) & 1) {
					rc = -EPIPE;
					break;
				}
				if (sw_passed(deadline)) {
					rc = -ETIMEDOUT;
					break;
				}
				if (steps < 64)
					sw_spin(&steps);
				else
					sw_nap();
			}
		}
		// release: our push before a draining receiver's look at the
		// count; pairs with the acquire in drain
		state.fetch_sub(2, std::memory_order_release);
		return rc;
	}

	int deliver(const item &it, void *elem)
	{
		if (esz)
			std::memcpy(elem, it.b, esz);
		return 0;
	}

	// closed: take what is left, then -EPIPE once no send is in progress
	int drain(void *elem)
	{
		unsigned steps = 0;
		item it;

		for (;;) {
			// acquire: every finished send's push; read before try_pop
			bool quiet = state.load(std::memory_order_acquire) == 1;

			if (q.try_pop(it))
				return deliver(it, elem);
			if (quiet)
				return -EPIPE;
			sw_spin(&steps);
		}
	}

	int recv(void *elem, int mode, int64_t deadline) override
	{
		item it;
		unsigned steps = 0;

		if (q.try_pop(it))
			return deliver(it, elem);
		if (state.load() & 1)
			return drain(elem);
		if (mode == SW_TRY)
			return -EAGAIN;
		if (deadline == SW_FOREVER) {
			if (blocking([&] { q.pop(it); }))
				return deliver(it, elem);
			return drain(elem); // aborted: closed
		}
		for (;;) {
			if (q.try_pop(it))
				return deliver(it, elem);
			if (state.load() & 1)
				return drain(elem);
			if (sw_passed(deadline))
				return -ETIMEDOUT;
			if (steps < 64)
				sw_spin(&steps);
			else
				sw_nap();
		}
	}

	int close() override
	{
		// seq_cst: pairs with the fetch_add in send and in blocking
		if (state.fetch_or(1) & 1)
			return -EPIPE;
		while (inside.load() > 0) {
			q.abort();
			sched_yield();
		}
		return 0;
	}

	size_t len() const override
	{
		// size(): pushes minus pops, waiting ones included: clamp
		std::ptrdiff_t n = q.size();

		if (n < 0)
			return 0;
		return static_cast<size_t>(n) > cap ? cap : static_cast<size_t>(n);
	}
};

} // namespace

extern "C" const chan_strategy chan_strategy_tbb =
	CXX_CHAN_STRATEGY("tbb", CHAN_CAP_BLOCKING | CHAN_CAP_MPMC, chan);
