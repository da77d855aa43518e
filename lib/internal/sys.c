/* lib/internal/sys.c: the failure-injection counter behind sys.h (built
 * only with -Dfault_injection=true).
 *
 * Ordering: arm is called while no other thread makes weft calls (the
 * test arms before its script); it stores the settings and then the mask
 * with release, and weft__fault_hit loads the mask with acquire. The
 * numbering is one RMW on count: exactly one call gets the number n. The
 * record of that call (site, kind, thread) is written before fired's
 * release store; weft__fault_fired reads fired with acquire. Sites are
 * found or added lock-free (a CAS of the site pointer into an empty slot
 * of an open-addressed table; a site string is a literal, so its pointer
 * names it).
 */
#include "internal/sys.h"

#include <stdio.h>
#include <string.h>

#include "internal/atomic.h"

#define SITES 1024 /* a power of two, well above lib/'s call sites */

struct site {
	const char *site; /* NULL: free (CAS once to the site) */
	uint32_t kind;
	uint64_t calls;
};

static struct site sites[SITES];
static void (*hook)(const char *site, unsigned kind, const char *thread);

static struct {
	const char *at_site; /* arm_site: the site whose n-th call fails */
	const char *func; /* arm_at: number only this function's calls */
	uint64_t n;       /* the number that fails; 0: none */
	uint32_t cap;     /* number only the first cap calls of a site; 0: all */
	uint32_t mask;    /* kinds counted; 0: off (release/acquire) */
	uint64_t count;   /* calls numbered (RMW) */
	uint32_t fired;   /* release: the record below is written */
	const char *site;
	unsigned kind;
	char thread[16];
} f;

static struct site *site_of(const char *site, unsigned kind)
{
	uint64_t h = (uint64_t)(uintptr_t)site * 0x9E3779B97F4A7C15ull;
	for (uint32_t i = 0; i < SITES; i++) {
		struct site *s = &sites[((h >> 54) + i) & (SITES - 1)];
		/* acquire: pairs with the claiming CAS */
		const char *cur = weft__ldp_acq((void **)&s->site);
		if (cur == site)
			return s;
		if (cur == NULL) {
			void *e = NULL;
			/* full RMW: claims the slot (a loser looks on) */
			if (weft__casp((void **)&s->site, &e, (void *)site)) {
				/* relaxed: read by the listing, after the script */
				weft__st32_rlx(&s->kind, kind);
				return s;
			}
			if (e == site)
				return s;
		}
	}
	return NULL; /* table full: counted, not listed */
}

bool weft__fault_hit(unsigned kind, const char *site, const char *func)
{
	/* acquire: pairs with arm's release (the settings before the mask) */
	if (!(weft__ld32_acq(&f.mask) & kind))
		return false;
	if (f.func && strcmp(f.func, func) != 0)
		return false;
	struct site *s = site_of(site, kind);
	/* RMW: the site's own numbering (exactly one call gets each k) */
	uint64_t k = s ? weft__faa64(&s->calls, 1) + 1 : 1;
	if (f.at_site) {
		/* RMW: the count, for the report */
		weft__faa64(&f.count, 1);
		if (k != f.n || strcmp(site, f.at_site) != 0)
			return false;
	} else {
		if (f.cap && k > f.cap)
			return false;
		/* RMW: exactly one call is numbered n */
		if (weft__faa64(&f.count, 1) + 1 != f.n)
			return false;
	}
	f.site = site;
	f.kind = kind;
	if (pthread_getname_np(pthread_self(), f.thread, sizeof f.thread) != 0)
		snprintf(f.thread, sizeof f.thread, "?");
	/* release: the record before the flag */
	weft__st32_rel(&f.fired, 1);
	if (hook)
		hook(site, kind, f.thread);
	return true;
}

static void arm(const char *func, uint64_t n, unsigned mask, uint32_t cap)
{
	weft__st32_rlx(&f.mask, 0);
	f.at_site = NULL;
	f.func = func;
	for (uint32_t i = 0; i < SITES; i++)
		sites[i] = (struct site){0};
	f.n = n;
	f.cap = cap;
	weft__st64_rlx(&f.count, 0);
	weft__st32_rlx(&f.fired, 0);
	f.site = NULL;
	f.kind = 0;
	f.thread[0] = 0;
	/* release: the settings above before the mask (see Ordering) */
	weft__st32_rel(&f.mask, mask);
}

void weft__fault_arm(uint64_t n, unsigned mask, uint32_t cap)
{
	arm(NULL, n, mask, cap);
}

void weft__fault_arm_at(const char *func, unsigned kind, uint64_t nth)
{
	arm(func, nth, kind, 0);
}

void weft__fault_arm_site(const char *site, uint64_t nth)
{
	arm(NULL, nth, 0, 0);
	f.at_site = site;
	/* release: as in arm */
	weft__st32_rel(&f.mask, WEFT__FAULT_ALL);
}

void weft__fault_set_hook(void (*fn)(const char *site, unsigned kind, const char *thread))
{
	hook = fn; /* (set before arm, whose release store publishes it) */
}

void weft__fault_disarm(void)
{
	/* relaxed: calls that already passed the check may still count */
	weft__st32_rlx(&f.mask, 0);
}

uint64_t weft__fault_calls(void)
{
	/* relaxed: a count for the test, read once the script is over */
	return weft__ld64_rlx(&f.count);
}

int weft__fault_fired(const char **site, unsigned *kind, const char **thread)
{
	/* acquire: pairs with the release in weft__fault_hit */
	if (!weft__ld32_acq(&f.fired))
		return 0;
	if (site)
		*site = f.site;
	if (kind)
		*kind = f.kind;
	if (thread)
		*thread = f.thread;
	return 1;
}

void weft__fault_sites(void (*fn)(const char *site, unsigned kind, uint64_t calls, void *user),
		       void *user)
{
	for (uint32_t i = 0; i < SITES; i++) {
		/* acquire: as in site_of */
		const char *s = weft__ldp_acq((void **)&sites[i].site);
		if (s)
			fn(s, weft__ld32_rlx(&sites[i].kind), weft__ld64_rlx(&sites[i].calls), user);
	}
}

const char *weft__fault_kind_name(unsigned kind)
{
	switch (kind) {
	case WEFT__FAULT_ALLOC:
		return "alloc";
	case WEFT__FAULT_THREAD:
		return "thread";
	case WEFT__FAULT_STACK:
		return "stack";
	case WEFT__FAULT_FILE:
		return "file";
	case WEFT__FAULT_KEY:
		return "key";
	}
	return "?";
}
