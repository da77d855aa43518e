// bench/strategies/moodycamel.cc: moodycamel::BlockingConcurrentQueue (the
// Debian package libconcurrentqueue-dev, header-only C++) as the strategy
// "moodycamel". Built only when the header is found at configure time
// (meson option peers); C++, seen from C through struct chan_strategy.
//
// The queue is unbounded and has no close. What the wrapper adds:
//   - bound: a moodycamel::LightweightSemaphore (the semaphore the queue
//     itself blocks on: spin, then sleep) holds one token per free slot,
//     initially the capacity. A send waits for a token, then enqueues; a
//     receive dequeues (blocking in wait_dequeue), then returns a token. So
//     capacity is exact and both sides block; the queue allocates its
//     blocks on demand and recycles them (memory stays flat once warm).
//   - close: a state word (closed bit, 2 x sends in progress) as in
//     ck_ring.c, a count of items not yet delivered, plus one marker item
//     that close enqueues: a receiver that dequeues it drains what is left
//     (try_dequeue), waits until no send is in progress and no item is
//     left undelivered, then puts the marker back for the next receiver
//     and returns -EPIPE; close also returns one token, and a sender that wakes
//     on a closed channel passes its token on, so every blocked sender
//     wakes with -EPIPE.
//   - elements of any size up to 256 bytes: the queue is instantiated for
//     size classes 8, 16, 32, 64, 128 and 256 bytes.
// Buffered only (no rendezvous), MPMC, FIFO per producer (moodycamel's
// guarantee; there is no total order between producers), no select.
#include <concurrentqueue/blockingconcurrentqueue.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>

#include "cxx_chan.h"
#include "strategy.h"
#include "wait.h"

namespace {

// microseconds from now to the deadline, at least 1 (moodycamel's timed waits)
int64_t usecs_left(int64_t deadline)
{
	int64_t now = sw_now();

	return deadline <= now ? 0 : (deadline - now + 999) / 1000;
}

template <size_t N> struct chan final : cxx_chan::base {
	struct item {
		unsigned char b[N];
		bool marker;
	};

	moodycamel::BlockingConcurrentQueue<item> q;
	moodycamel::LightweightSemaphore slots;
	// bit 0: closed; the rest: 2 x sends in progress
	alignas(64) std::atomic<unsigned long> state{ 0 };
	// items enqueued and not yet delivered. A receiver's token is only a
	// count: the element it dequeues may be the one another token stood
	// for, so "no token left" does not mean "nothing left for me later";
	// after close only pending == 0 does.
	alignas(64) std::atomic<unsigned long> pending{ 0 };

	explicit chan(size_t cap) : q(cap + 1), slots(static_cast<ssize_t>(cap)) {}

	// one token: true, or false by the mode (try: none now; until: deadline)
	bool token(int mode, int64_t deadline)
	{
		if (slots.tryWait())
			return true;
		if (mode == SW_TRY)
			return false;
		if (deadline == SW_FOREVER)
			return slots.wait();
		for (;;) {
			int64_t us = usecs_left(deadline);

			if (us == 0)
				return false;
			if (slots.wait(us))
				return true;
		}
	}

	int send(const void *elem, int mode, int64_t deadline) override
	{
		// an early look, so that sends on a closed channel never wait
		if (state.load(std::memory_order_relaxed) & 1)
			return -EPIPE;
		if (!token(mode, deadline))
			return mode == SW_TRY ? -EAGAIN : (state.load() & 1) ? -EPIPE : -ETIMEDOUT;
		// seq_cst: our count before our look at the closed bit; pairs with
		// the fetch_or in close
		if (state.fetch_add(2) & 1) {
			state.fetch_sub(2, std::memory_order_release);
			slots.signal(); // pass the token on: the next blocked sender wakes
			return -EPIPE;
		}
		item it{};
		if (esz)
			std::memcpy(it.b, elem, esz);
		it.marker = false;
		pending.fetch_add(1, std::memory_order_relaxed);
		bool ok = q.enqueue(it);
		if (!ok)
			pending.fetch_sub(1, std::memory_order_relaxed);
		// release: our enqueue before a draining receiver's look at the
		// count; pairs with the acquire in drain
		state.fetch_sub(2, std::memory_order_release);
		if (!ok) {
			slots.signal();
			return -ENOMEM;
		}
		return 0;
	}

	int deliver(const item &it, void *elem)
	{
		if (esz)
			std::memcpy(elem, it.b, esz);
		// release: our take before a draining receiver sees pending 0
		pending.fetch_sub(1, std::memory_order_release);
		slots.signal();
		return 0;
	}

	// closed: take what is left; hold: we dequeued the (only) marker and
	// must put it back for the next receiver
	int drain(void *elem, bool hold)
	{
		unsigned steps = 0;

		for (;;) {
			// acquire: every finished send's enqueue (pairs with the
			// release in send) and every delivery (deliver). Read
			// before the try_dequeue below: quiet means no send is in
			// progress and no item is left for anyone.
			bool quiet = state.load(std::memory_order_acquire) == 1 &&
				     pending.load(std::memory_order_acquire) == 0;
			item it;

			while (q.try_dequeue(it)) {
				if (it.marker) {
					hold = true;
					continue;
				}
				if (hold)
					q.enqueue(it_marker());
				return deliver(it, elem);
			}
			if (quiet) {
				if (hold)
					q.enqueue(it_marker());
				return -EPIPE;
			}
			sw_spin(&steps); // a send is finishing
		}
	}

	static item it_marker()
	{
		item m{};
		m.marker = true;
		return m;
	}

	int recv(void *elem, int mode, int64_t deadline) override
	{
		item it{};
		bool got;

		if (mode == SW_TRY) {
			got = q.try_dequeue(it);
		} else if (deadline == SW_FOREVER) {
			q.wait_dequeue(it);
			got = true;
		} else {
			got = q.try_dequeue(it);
			while (!got) {
				int64_t us = usecs_left(deadline);

				if (us == 0)
					break;
				got = q.wait_dequeue_timed(it, us);
			}
		}
		if (got && !it.marker)
			return deliver(it, elem);
		if (got || (state.load() & 1))
			return drain(elem, got);
		return mode == SW_TRY ? -EAGAIN : -ETIMEDOUT;
	}

	int close() override
	{
		// seq_cst: pairs with the fetch_add in send
		if (state.fetch_or(1) & 1)
			return -EPIPE;
		slots.signal(); // wakes one blocked sender, which passes it on
		return q.enqueue(it_marker()) ? 0 : -ENOMEM;
	}

	size_t len() const override
	{
		size_t n = q.size_approx();
		bool closed = state.load(std::memory_order_relaxed) & 1;

		return closed ? (n ? n - 1 : 0) : n;
	}
};

} // namespace

extern "C" const chan_strategy chan_strategy_moodycamel =
	CXX_CHAN_STRATEGY("moodycamel", CHAN_CAP_BLOCKING | CHAN_CAP_MPMC, chan);
