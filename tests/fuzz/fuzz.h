/* tests/fuzz/fuzz.h: what every libFuzzer harness of weft shares.
 *
 * A harness decodes its input into a sequence of single-threaded weft
 * calls and checks each result against a small sequential model of its
 * own. Input bytes are consumed front to back by the reader below; once
 * they run out every read returns 0, so any input is a valid program.
 * A failed check prints file:line and the values (check.h) and aborts:
 * libFuzzer saves the input as a crash.
 *
 * No call a harness makes may block forever: only try calls, calls with a
 * deadline already passed, contexts already done, or blocking calls the
 * model knows complete at once. */
#ifndef WEFT_FUZZ_H
#define WEFT_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

/* Sanitizer defaults for every harness (the environment's ASAN_OPTIONS
 * still win, key by key): an allocation above 1 GiB fails (NULL) instead
 * of killing the process, so absurd sizes reach weft's -ENOMEM paths;
 * libFuzzer would otherwise report any allocation over its malloc limit
 * as a crash. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1:max_allocation_size_mb=1024";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
	const uint8_t *p;
	size_t n;
};

static inline bool fz_more(const struct fz *f)
{
	return f->n > 0;
}

static inline uint8_t fz_u8(struct fz *f)
{
	if (!f->n)
		return 0;
	f->n--;
	return *f->p++;
}

static inline uint16_t fz_u16(struct fz *f)
{
	return (uint16_t)(fz_u8(f) | fz_u8(f) << 8);
}

static inline uint32_t fz_u32(struct fz *f)
{
	return (uint32_t)fz_u16(f) | (uint32_t)fz_u16(f) << 16;
}

static inline uint64_t fz_u64(struct fz *f)
{
	return (uint64_t)fz_u32(f) | (uint64_t)fz_u32(f) << 32;
}

/* 0 .. n-1 (n > 0), from one byte when n fits in one */
static inline uint32_t fz_below(struct fz *f, uint32_t n)
{
	return (n <= 256 ? fz_u8(f) : fz_u32(f)) % n;
}

/* one of the k values */
#define FZ_PICK(f, arr) ((arr)[fz_below((f), (uint32_t)(sizeof(arr) / sizeof((arr)[0])))])

/* An "interesting" 64-bit value: the edges (0, 1, -1, the extremes, the
 * powers of two and their neighbours) or any value. */
static inline int64_t fz_i64_edge(struct fz *f)
{
	uint8_t k = fz_u8(f);
	switch (k % 8) {
	case 0:
		return 0;
	case 1:
		return (int64_t)(k >> 3) - 16; /* small, either sign */
	case 2:
		return INT64_MAX - (k >> 3);
	case 3:
		return INT64_MIN + (k >> 3);
	case 4:
		return (int64_t)((uint64_t)1 << (k >> 3 & 63));
	case 5:
		return (int64_t)((uint64_t)1 << (k >> 3 & 63)) - 1;
	case 6:
		return -(int64_t)((uint64_t)1 << (k >> 3 & 63));
	default:
		return (int64_t)fz_u64(f);
	}
}

/* A deterministic byte pattern for element number `seq` of `size` bytes,
 * so the model can compare contents exactly. */
static inline void fz_fill(void *dst, size_t size, uint64_t seq)
{
	unsigned char *d = dst;
	uint64_t x = seq * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
	for (size_t i = 0; i < size; i++) {
		if (i % 8 == 0)
			x ^= x >> 29, x *= 0xBF58476D1CE4E5B9ull, x ^= x >> 32;
		d[i] = (unsigned char)(x >> (8 * (i % 8)));
	}
	if (size >= 8)
		memcpy(d, &seq, 8); /* the number itself, readable in a dump */
}

#endif
