// bench/strategies/cxx_chan.h: the C strategy table (strategy.h) over a C++
// channel class, shared by the C++ peers (moodycamel.cc, tbb.cc).
//
// A peer defines, in its own anonymous namespace, `template <size_t N>
// struct chan final : cxx_chan::base` (N: the element size class; send/recv
// take SW_TRY or SW_UNTIL from wait.h and an absolute deadline) and then
//
//   extern "C" const chan_strategy chan_strategy_<name> =
//           CXX_CHAN_STRATEGY("<name>", caps, chan);
//
// Elements up to 256 bytes are stored in size classes 8, 16, 32, 64, 128
// and 256 bytes; larger ones are -EINVAL, capacity 0 is -EINVAL (no
// rendezvous), capacities above 2^30 are -ENOMEM. A peer with a rendezvous
// of its own (boost_fiber.cc) takes cxx_chan::table<chan, true>, which lets
// capacity 0 through to chan<N>(0), and fills the table with
//
//   extern "C" const chan_strategy chan_strategy_<name> =
//           CXX_CHAN_TABLE("<name>", caps, ops, rt);
//
// (ops: the table type; rt: its struct chan_runtime, or nullptr).
#ifndef WEFT_BENCH_CXX_CHAN_H
#define WEFT_BENCH_CXX_CHAN_H

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <new>

#include "strategy.h"
#include "wait.h"

namespace cxx_chan {

struct base {
	virtual ~base() = default;
	virtual int send(const void *elem, int mode, int64_t deadline) = 0;
	virtual int recv(void *elem, int mode, int64_t deadline) = 0;
	virtual int close() = 0;
	virtual size_t len() const = 0;
	size_t esz = 0;
};

template <template <size_t> class Chan, bool Rendezvous = false> struct table {
	template <size_t N> static base *make(size_t cap)
	{
		return new (std::nothrow) Chan<N>(cap);
	}

	static int create(void **out, size_t elem_size, size_t capacity)
	{
		base *c = nullptr;

		if (!out || (capacity == 0 && !Rendezvous) || elem_size > 256)
			return -EINVAL;
		if (capacity > (1u << 30))
			return -ENOMEM;
		try {
			if (elem_size <= 8)
				c = make<8>(capacity);
			else if (elem_size <= 16)
				c = make<16>(capacity);
			else if (elem_size <= 32)
				c = make<32>(capacity);
			else if (elem_size <= 64)
				c = make<64>(capacity);
			else if (elem_size <= 128)
				c = make<128>(capacity);
			else
				c = make<256>(capacity);
		} catch (...) {
			c = nullptr;
		}
		if (!c)
			return -ENOMEM;
		c->esz = elem_size;
		*out = c;
		return 0;
	}

	static void destroy(void *ch)
	{
		delete static_cast<base *>(ch);
	}

	static int op_send(void *ch, const void *elem, int mode, int64_t deadline)
	{
		base *c = static_cast<base *>(ch);

		if (!c || sw_bad_elem(elem, c->esz))
			return -EINVAL;
		return c->send(elem, mode, deadline);
	}

	static int op_recv(void *ch, void *elem, int mode, int64_t deadline)
	{
		base *c = static_cast<base *>(ch);

		if (!c || sw_bad_elem(elem, c->esz))
			return -EINVAL;
		return c->recv(elem, mode, deadline);
	}

	static int send(void *ch, const void *elem) { return op_send(ch, elem, SW_UNTIL, SW_FOREVER); }
	static int recv(void *ch, void *elem) { return op_recv(ch, elem, SW_UNTIL, SW_FOREVER); }
	static int try_send(void *ch, const void *elem) { return op_send(ch, elem, SW_TRY, 0); }
	static int try_recv(void *ch, void *elem) { return op_recv(ch, elem, SW_TRY, 0); }
	static int send_until(void *ch, const void *elem, int64_t d) { return op_send(ch, elem, SW_UNTIL, d); }
	static int recv_until(void *ch, void *elem, int64_t d) { return op_recv(ch, elem, SW_UNTIL, d); }

	static int close(void *ch)
	{
		return ch ? static_cast<base *>(ch)->close() : -EINVAL;
	}

	static size_t len(const void *ch)
	{
		return ch ? static_cast<const base *>(ch)->len() : 0;
	}
};

} // namespace cxx_chan

// positional: C++17 has no designated initializers (constant-initialized)
#define CXX_CHAN_TABLE(name, caps, Ops, rt)                                                \
	{                                                                                  \
		name, caps, Ops::create, Ops::destroy, Ops::send, Ops::recv, Ops::try_send, \
			Ops::try_recv, Ops::send_until, Ops::recv_until, Ops::close, Ops::len, \
			nullptr, nullptr, nullptr, nullptr, nullptr, rt,                    \
	}
#define CXX_CHAN_STRATEGY(name, caps, Chan) CXX_CHAN_TABLE(name, caps, cxx_chan::table<Chan>, nullptr)

#endif
