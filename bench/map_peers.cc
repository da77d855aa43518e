// bench/map_peers.cc: the map family's C++ peers (bench/map.h), each built
// only when its Debian package is found at configure time:
//   tbb     tbb::concurrent_hash_map<uint64_t, uintptr_t> (libtbb-dev):
//           find under a const_accessor (a bucket read lock), store by
//           insert with an accessor (the bucket's write lock) and assign
//   cuckoo  libcuckoo::cuckoohash_map<uint64_t, uintptr_t> (libcuckoo-dev):
//           find, insert_or_assign (striped spinlocks, cuckoo hashing)
// Both are sized for the keys up front (as weft's capacity_hint), keyed by
// the integer itself. Neither has get-or-compute: they skip the herd case.
#include <cstdint>
#include <cstdlib>
#include <new>

#include "map.h"

#ifdef WEFT_MAP_TBB
#include <tbb/concurrent_hash_map.h>

namespace {
using tbb_map = tbb::concurrent_hash_map<uint64_t, uintptr_t>;

void *tbb_create(size_t keys)
{
	return new (std::nothrow) tbb_map(keys);
}
void tbb_destroy(void *m)
{
	delete static_cast<tbb_map *>(m);
}
int tbb_load(void *m, uint64_t k, uintptr_t *v)
{
	tbb_map::const_accessor a;
	if (!static_cast<tbb_map *>(m)->find(a, k))
		return 0;
	*v = a->second;
	return 1;
}
void tbb_store(void *m, uint64_t k, uintptr_t v)
{
	tbb_map::accessor a;
	static_cast<tbb_map *>(m)->insert(a, k);
	a->second = v;
}
} // namespace

extern "C" const struct map_impl map_impl_tbb = { "tbb", tbb_create, tbb_destroy, tbb_load,
						  tbb_store, nullptr, 0 };
#endif

#ifdef WEFT_MAP_CUCKOO
#include <libcuckoo/cuckoohash_map.hh>

namespace {
using cuckoo_map = libcuckoo::cuckoohash_map<uint64_t, uintptr_t>;

void *cuckoo_create(size_t keys)
{
	return new (std::nothrow) cuckoo_map(keys);
}
void cuckoo_destroy(void *m)
{
	delete static_cast<cuckoo_map *>(m);
}
int cuckoo_load(void *m, uint64_t k, uintptr_t *v)
{
	return static_cast<cuckoo_map *>(m)->find(k, *v) ? 1 : 0;
}
void cuckoo_store(void *m, uint64_t k, uintptr_t v)
{
	static_cast<cuckoo_map *>(m)->insert_or_assign(k, v);
}
} // namespace

extern "C" const struct map_impl map_impl_cuckoo = { "cuckoo", cuckoo_create, cuckoo_destroy,
						     cuckoo_load, cuckoo_store, nullptr, 0 };
#endif
