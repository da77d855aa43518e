/* weft: Go's concurrency patterns for C, lock-free where it counts.
 * The umbrella header: include this, or only the module headers you use. */
#ifndef WEFT_H
#define WEFT_H

#include <weft/common.h>
#include <weft/chan.h>
#include <weft/ctx.h>
#include <weft/sync.h>
#include <weft/group.h>
#include <weft/pool.h>
#include <weft/task.h>
#include <weft/breaker.h>
#include <weft/pipeline.h>
#include <weft/map.h>

#endif /* WEFT_H */
