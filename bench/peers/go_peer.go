// bench/peers/go_peer.go: Go's runtime on weft-bench's own programs, so
// the suite sets Go's channels and goroutines beside weft in the same run.
// Built by bench/meson.build when Debian's golang-go is installed (standard
// library only, GOPATH mode, nothing downloaded); run by bench/peers/go_peer.c
// as the "go" strategy, in a child process:
//
//	weft-go-peer pool JOBS WORKERS QUEUE RESULTS SLEEP_NS
//	weft-go-peer chan PRODUCERS CONSUMERS CAP ITEMS
//	weft-go-peer pipeline 1 3 CAP ITEMS
//	weft-go-peer fanout WORKERS WORKERS CAP ITEMS
//	weft-go-peer seedpool WORKERS 1 CAP ITEMS
//	weft-go-peer breaker closed|open|half_open THREADS ITEMS
//	weft-go-peer map KEYS THREADS READ_PCT ZIPF(0|1) 0
//	weft-go-peer herd THREADS KEYS COMPUTE_NS SINGLEFLIGHT(0|1)
//
// pool: the pool family's streaming shape (bench/pool.h). WORKERS goroutines
// range over a jobs channel of QUEUE slots (the pool's queue, its
// backpressure), one producer goroutine sends job ids 0..JOBS-1 into it,
// each job computes mix(id) (the same splitmix64 as pool.c), sleeps SLEEP_NS
// if nonzero, and sends {id, mix(id)} into a results channel of RESULTS
// slots that the main goroutine drains. Timed from the producer's start to
// the last result received, as pool.c.
//
// chan: the channel family's P x C case (bench/chan.h). PRODUCERS
// goroutines send ITEMS values (1..ITEMS, split between them) of 8 bytes
// into one channel of CAP slots (0: unbuffered), the last producer to finish
// closes it, CONSUMERS goroutines receive until it is closed. Timed from the
// release of all of them to the last one done, as chan.c.
//
// pipeline: generate -> square -> keep the even -> drain, channels of CAP
// (bench/chan.c's pipeline). fanout: the seed's fanOut and FanIn: generate
// into one channel, WORKERS goroutines square into a channel each, FanIn
// forwards each into one channel (closed once all are), main drains.
// seedpool: the seed's channel worker pool: generate into jobs (CAP),
// WORKERS goroutines range over it and send squares into results (CAP),
// closed once all are done, main drains. Values 0..ITEMS-1; checked by
// count and sum as chan.c checks them.
//
// breaker: the breaker family (bench/breaker.h). sony/gobreaker is not
// packaged for Debian, so breaker below is its algorithm (v2's
// CircuitBreaker without the rolling buckets, which the benchmark does not
// set, and with its panic recovery): one sync.Mutex taken in beforeRequest and again in afterRequest,
// time.Now() in each, generations, lazy open -> half-open. THREADS
// goroutines make ITEMS/THREADS Execute calls each of a function that
// counts its calls; closed: default settings; open: tripped, timeout 1 h,
// every call ErrOpenState; half_open: timeout 1 ms and MaxRequests
// 2^32-1, every call a probe that never closes it. Checked: each call's
// error, the function's count, the breaker's Requests and state.
//
// map: the map family's mix case (bench/map.h) on a sync.Map of KEYS
// uint64 keys (filled untimed; its RSS growth per key is reported as
// rss_bytes_per_key): THREADS goroutines do KEYS ops in total, a Load with
// probability READ_PCT %, else a Store over an existing key, keys uniform or
// Zipf (the same generator and sequence as bench/map.c). herd: THREADS
// goroutines ask for the same KEYS fresh keys in order through the seed's
// getOrCompute (Load, compute, LoadOrStore), or (SINGLEFLIGHT 1) through
// x/sync's singleflight around the compute; compute sleeps COMPUTE_NS; the
// line adds computes= (how many ran).
//
// GOMAXPROCS is Go's default (the online cores). CPU and context switches
// are this process's getrusage over the timed span. The results are checked
// as the C scenarios check them (each item once: count and sum; pool: each
// value right): a wrong run exits 1 with the reason on stderr. Success
// prints one line on stdout (peak_rss_kb: this process's VmHWM):
//
//	items=N wall_ns=W cpu_ns=C ctx_switches=S peak_rss_kb=R
package main

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

type result struct{ id, val uint64 }

func usage() {
	fmt.Fprintln(os.Stderr, "usage: weft-go-peer pool JOBS WORKERS QUEUE RESULTS SLEEP_NS\n"+
		"       weft-go-peer chan PRODUCERS CONSUMERS CAP ITEMS\n"+
		"       weft-go-peer map KEYS THREADS READ_PCT ZIPF 0\n"+
		"       weft-go-peer herd THREADS KEYS COMPUTE_NS SINGLEFLIGHT")
	os.Exit(2)
}

func arg(i int) uint64 {
	v, err := strconv.ParseUint(os.Args[i], 10, 64)
	if err != nil {
		usage()
	}
	return v
}

func rusage() (cpu time.Duration, switches int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintln(os.Stderr, "getrusage:", err)
		os.Exit(1)
	}
	cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return cpu, ru.Nvcsw + ru.Nivcsw
}

// peakRSSKb is this process's VmHWM. Not ru_maxrss: a child started by
// posix_spawn (vfork) has its parent's peak folded into that.
func peakRSSKb() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "VmHWM:") {
			fields := strings.Fields(line) // VmHWM: N kB
			v, _ := strconv.ParseInt(fields[1], 10, 64)
			return v
		}
	}
	return 0
}

// span measures the timed part of a run and prints the result line.
type span struct {
	t0  time.Time
	cpu time.Duration
	sw  int64
}

func startSpan() span {
	cpu, sw := rusage()
	return span{time.Now(), cpu, sw}
}

func (s span) report(items uint64) {
	s.reportWith(items, "")
}

// reportWith adds extra (" name=value" pairs) to the line.
func (s span) reportWith(items uint64, extra string) {
	wall := time.Since(s.t0)
	cpu, sw := rusage()
	fmt.Printf("items=%d wall_ns=%d cpu_ns=%d ctx_switches=%d peak_rss_kb=%d%s\n",
		items, wall.Nanoseconds(), (cpu - s.cpu).Nanoseconds(), sw-s.sw, peakRSSKb(), extra)
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(1)
}

// sumTo is 0 + 1 + ... + n-1 without overflow before the division.
func sumTo(n uint64) uint64 {
	if n%2 == 1 {
		return n * ((n - 1) / 2)
	}
	return n / 2 * (n - 1)
}

func main() {
	switch {
	case len(os.Args) == 7 && os.Args[1] == "pool":
		runPool(arg(2), arg(3), arg(4), arg(5), arg(6))
	case len(os.Args) == 6 && os.Args[1] == "chan":
		runChan(arg(2), arg(3), arg(4), arg(5))
	case len(os.Args) == 6 && os.Args[1] == "pipeline":
		runPipeline(arg(4), arg(5))
	case len(os.Args) == 6 && os.Args[1] == "fanout":
		runFanout(arg(2), arg(4), arg(5))
	case len(os.Args) == 6 && os.Args[1] == "seedpool":
		runSeedPool(arg(2), arg(4), arg(5))
	case len(os.Args) == 5 && os.Args[1] == "breaker":
		runBreaker(os.Args[2], arg(3), arg(4))
	case len(os.Args) == 7 && os.Args[1] == "map":
		runMap(arg(2), arg(3), arg(4), arg(5), arg(6))
	case len(os.Args) == 6 && os.Args[1] == "herd":
		runHerd(arg(2), arg(3), arg(4), arg(5))
	default:
		usage()
	}
}

func runPool(jobs, workers, queue, resultsCap, sleepNs uint64) {
	if jobs == 0 || workers == 0 {
		usage()
	}
	jobq := make(chan uint64, queue)
	results := make(chan result, resultsCap)
	for w := uint64(0); w < workers; w++ {
		go func() {
			for id := range jobq {
				r := result{id, mix(id)}
				if sleepNs != 0 {
					time.Sleep(time.Duration(sleepNs))
				}
				results <- r
			}
		}()
	}
	time.Sleep(10 * time.Millisecond) // the workers are parked, as a created pool's

	sp := startSpan()
	go func() {
		for i := uint64(0); i < jobs; i++ {
			jobq <- i
		}
		close(jobq)
	}()
	var got, idsum, bad uint64
	for got < jobs {
		r := <-results
		got++
		idsum += r.id
		if r.id >= jobs || r.val != mix(r.id) {
			bad++
		}
	}
	sp.report(jobs)
	if want := sumTo(jobs); bad != 0 || idsum != want {
		fail("wrong results: %d bad, sum of ids %d (want %d)", bad, idsum, want)
	}
}

func runChan(producers, consumers, capacity, items uint64) {
	if producers == 0 || consumers == 0 || items == 0 {
		usage()
	}
	ch := make(chan uint64, capacity)
	start := make(chan struct{})
	var prodLeft atomic.Int64
	prodLeft.Store(int64(producers))
	var done sync.WaitGroup
	counts := make([]struct {
		n, sum uint64
		_      [48]byte // one line each
	}, consumers)
	for p := uint64(0); p < producers; p++ {
		lo, hi := items*p/producers, items*(p+1)/producers
		done.Add(1)
		go func() {
			defer done.Done()
			<-start
			for v := lo; v < hi; v++ {
				ch <- v + 1
			}
			if prodLeft.Add(-1) == 0 {
				close(ch)
			}
		}()
	}
	for c := range counts {
		done.Add(1)
		go func(k *struct {
			n, sum uint64
			_      [48]byte
		}) {
			defer done.Done()
			<-start
			for v := range ch {
				k.n++
				k.sum += v
			}
		}(&counts[c])
	}
	timeRun(start, &done, items)
	var n, sum uint64
	for _, k := range counts {
		n += k.n
		sum += k.sum
	}
	if want := sumTo(items + 1); n != items || sum != want {
		fail("wrong items: %d received (want %d), sum %d (want %d)", n, items, sum, want)
	}
}

// timeRun lets every goroutine reach <-start, then times from closing it
// to done, and prints the result line.
func timeRun(start chan struct{}, done *sync.WaitGroup, items uint64) {
	time.Sleep(10 * time.Millisecond) // every goroutine waits at the start
	sp := startSpan()
	close(start)
	done.Wait()
	sp.report(items)
}

func generate(start <-chan struct{}, capacity, items uint64) <-chan uint64 {
	out := make(chan uint64, capacity)
	go func() {
		<-start
		for v := uint64(0); v < items; v++ {
			out <- v
		}
		close(out)
	}()
	return out
}

// drain receives until in is closed: the count and the sum (mod 2^64).
func drain(in <-chan uint64) (n, sum uint64) {
	for v := range in {
		n++
		sum += v
	}
	return
}

func squaresTo(n uint64) (sq uint64) {
	for v := uint64(0); v < n; v++ {
		sq += v * v
	}
	return
}

func runPipeline(capacity, items uint64) {
	start := make(chan struct{})
	square := func(in <-chan uint64) <-chan uint64 {
		out := make(chan uint64, capacity)
		go func() {
			for v := range in {
				out <- v * v
			}
			close(out)
		}()
		return out
	}
	even := func(in <-chan uint64) <-chan uint64 {
		out := make(chan uint64, capacity)
		go func() {
			for v := range in {
				if v%2 == 0 {
					out <- v
				}
			}
			close(out)
		}()
		return out
	}
	out := even(square(generate(start, capacity, items)))
	time.Sleep(10 * time.Millisecond)
	sp := startSpan()
	close(start)
	n, sum := drain(out)
	sp.report(items)
	kept, want := (items+1)/2, uint64(0)
	for k := uint64(0); k < kept; k++ {
		want += 4 * k * k
	}
	if n != kept || sum != want {
		fail("pipeline: drained %d (want %d), sum %d (want %d)", n, kept, sum, want)
	}
}

func runFanout(workers, capacity, items uint64) {
	start := make(chan struct{})
	in := generate(start, capacity, items)
	outs := make([]<-chan uint64, workers)
	for i := range outs {
		out := make(chan uint64, capacity)
		go func() {
			for v := range in {
				out <- v * v
			}
			close(out)
		}()
		outs[i] = out
	}
	merged := make(chan uint64, capacity)
	var wg sync.WaitGroup
	for _, c := range outs {
		wg.Add(1)
		go func(c <-chan uint64) {
			defer wg.Done()
			for v := range c {
				merged <- v
			}
		}(c)
	}
	go func() {
		wg.Wait()
		close(merged)
	}()
	timeSquares("fanout", start, merged, items)
}

func runSeedPool(workers, capacity, items uint64) {
	start := make(chan struct{})
	jobs := generate(start, capacity, items)
	results := make(chan uint64, capacity)
	var wg sync.WaitGroup
	for w := uint64(0); w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				results <- j * j
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	timeSquares("seedpool", start, results, items)
}

// timeSquares lets every goroutine wait at start, then times from closing
// it to out drained, which must hold the squares of 0..items-1 once each.
func timeSquares(what string, start chan struct{}, out <-chan uint64, items uint64) {
	time.Sleep(10 * time.Millisecond)
	sp := startSpan()
	close(start)
	n, sum := drain(out)
	sp.report(items)
	if want := squaresTo(items); n != items || sum != want {
		fail("%s: drained %d (want %d), sum %d (want %d)", what, n, items, sum, want)
	}
}

// ---- breaker: gobreaker's CircuitBreaker, as it is written ----

type bState int

const (
	bClosed bState = iota
	bHalfOpen
	bOpen
)

var (
	errOpenState       = errors.New("circuit breaker is open")
	errTooManyRequests = errors.New("too many requests")
)

type bCounts struct {
	Requests, TotalSuccesses, TotalFailures, TotalExclusions uint32
	ConsecutiveSuccesses, ConsecutiveFailures                uint32
}

type breaker struct {
	maxRequests uint32
	interval    time.Duration
	timeout     time.Duration
	readyToTrip func(c bCounts) bool

	mutex      sync.Mutex
	state      bState
	generation uint64
	counts     bCounts
	expiry     time.Time
}

func newBreaker(maxRequests uint32, interval, timeout time.Duration) *breaker {
	if maxRequests == 0 {
		maxRequests = 1
	}
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	cb := &breaker{maxRequests: maxRequests, interval: interval, timeout: timeout,
		readyToTrip: func(c bCounts) bool { return c.ConsecutiveFailures > 5 }}
	cb.toNewGeneration(time.Now())
	return cb
}

func (cb *breaker) Execute(req func() error) error {
	generation, err := cb.beforeRequest()
	if err != nil {
		return err
	}
	defer func() { // as gobreaker: a panic counts as a failure
		if e := recover(); e != nil {
			cb.afterRequest(generation, false)
			panic(e)
		}
	}()
	err = req()
	cb.afterRequest(generation, err == nil)
	return err
}

func (cb *breaker) State() bState {
	cb.mutex.Lock()
	defer cb.mutex.Unlock()
	state, _ := cb.currentState(time.Now())
	return state
}

func (cb *breaker) beforeRequest() (uint64, error) {
	cb.mutex.Lock()
	defer cb.mutex.Unlock()
	state, generation := cb.currentState(time.Now())
	if state == bOpen {
		return generation, errOpenState
	} else if state == bHalfOpen && cb.counts.Requests-cb.counts.TotalExclusions >= cb.maxRequests {
		return generation, errTooManyRequests
	}
	cb.counts.Requests++
	return generation, nil
}

func (cb *breaker) afterRequest(before uint64, success bool) {
	cb.mutex.Lock()
	defer cb.mutex.Unlock()
	now := time.Now()
	state, generation := cb.currentState(now)
	if generation != before {
		return
	}
	c := &cb.counts
	if success {
		c.TotalSuccesses++
		c.ConsecutiveSuccesses++
		c.ConsecutiveFailures = 0
		if state == bHalfOpen && c.ConsecutiveSuccesses >= cb.maxRequests {
			cb.setState(bClosed, now)
		}
		return
	}
	c.TotalFailures++
	c.ConsecutiveFailures++
	c.ConsecutiveSuccesses = 0
	if state == bHalfOpen || (state == bClosed && cb.readyToTrip(*c)) {
		cb.setState(bOpen, now)
	}
}

func (cb *breaker) currentState(now time.Time) (bState, uint64) {
	switch cb.state {
	case bClosed:
		if !cb.expiry.IsZero() && cb.expiry.Before(now) {
			cb.toNewGeneration(now)
		}
	case bOpen:
		if cb.expiry.Before(now) {
			cb.setState(bHalfOpen, now)
		}
	}
	return cb.state, cb.generation
}

func (cb *breaker) setState(state bState, now time.Time) {
	if cb.state == state {
		return
	}
	cb.state = state
	cb.toNewGeneration(now)
}

func (cb *breaker) toNewGeneration(now time.Time) {
	cb.generation++
	cb.counts = bCounts{}
	var zero time.Time
	switch cb.state {
	case bClosed:
		if cb.interval == 0 {
			cb.expiry = zero
		} else {
			cb.expiry = now.Add(cb.interval)
		}
	case bOpen:
		cb.expiry = now.Add(cb.timeout)
	default:
		cb.expiry = zero
	}
}

func runBreaker(kind string, threads, items uint64) {
	if threads == 0 || items%threads != 0 {
		usage()
	}
	var cb *breaker
	want, wantState := error(nil), bClosed
	failing := func() error { return errors.New("failed") }
	switch kind {
	case "closed":
		cb = newBreaker(0, 0, 0)
	case "open":
		cb = newBreaker(0, 0, time.Hour)
		want, wantState = errOpenState, bOpen
	case "half_open":
		cb = newBreaker(^uint32(0), 0, time.Millisecond)
		wantState = bHalfOpen
	default:
		usage()
	}
	if kind != "closed" {
		for i := 0; i < 6; i++ {
			_ = cb.Execute(failing)
		}
		if kind == "half_open" {
			time.Sleep(2 * time.Millisecond)
		}
	}
	if s := cb.State(); s != wantState {
		fail("breaker %s: state %d before the run", kind, s)
	}
	start := make(chan struct{})
	ran := make([]struct {
		n, bad uint64
		_      [48]byte // one line each
	}, threads)
	var done sync.WaitGroup
	for t := range ran {
		done.Add(1)
		go func(k *struct {
			n, bad uint64
			_      [48]byte
		}) {
			defer done.Done()
			count := func() error { k.n++; return nil }
			<-start
			for i := uint64(0); i < items/threads; i++ {
				if cb.Execute(count) != want {
					k.bad++
				}
			}
		}(&ran[t])
	}
	timeRun(start, &done, items)
	var n, bad uint64
	for _, k := range ran {
		n += k.n
		bad += k.bad
	}
	admitted := items
	if kind == "open" {
		admitted = 0
	}
	cb.mutex.Lock()
	requests := cb.counts.Requests
	cb.mutex.Unlock()
	if bad != 0 || n != admitted || uint64(requests) != admitted || cb.State() != wantState {
		fail("breaker %s: %d wrong returns, fn ran %d, %d requests counted, %d admitted",
			kind, bad, n, requests, admitted)
	}
}

// ---- the map family ----

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// the key sequence of bench/map.c (seq_get): key | writeBit
const writeBit = uint64(1) << 63

func mapSeq(keys, ops, readPct uint64, zipf bool) []uint64 {
	seq := make([]uint64, ops)
	var theta, alpha, zetan, eta, half float64
	if zipf {
		theta = 0.99
		alpha = 1 / (1 - theta)
		for i := uint64(1); i <= keys; i++ {
			zetan += 1 / math.Pow(float64(i), theta)
		}
		zeta2 := 1 + math.Pow(0.5, theta)
		eta = (1 - math.Pow(2/float64(keys), 1-theta)) / (1 - zeta2/zetan)
		half = 1 + math.Pow(0.5, theta)
	}
	r := uint64(42)
	for i := range seq {
		var k uint64
		if zipf {
			r = splitmix(r)
			u := float64(r>>11) / float64(uint64(1)<<53)
			uz := u * zetan
			var rank uint64
			switch {
			case uz < 1:
				rank = 0
			case uz < half:
				rank = 1
			default:
				rank = uint64(float64(keys) * math.Pow(eta*u-eta+1, alpha))
			}
			if rank >= keys {
				rank = keys - 1
			}
			k = splitmix(rank^0x5bd1e995) % keys
		} else {
			r = splitmix(r)
			k = r % keys
		}
		r = splitmix(r)
		if r%100 >= readPct {
			k |= writeBit
		}
		seq[i] = k
	}
	return seq
}

func rssKb() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	v, _ := strconv.ParseInt(f[1], 10, 64)
	return v * 4
}

func runMap(keys, threads, readPct, zipf, _ uint64) {
	if keys == 0 || threads == 0 {
		usage()
	}
	runtime.GC()
	before := rssKb()
	var m sync.Map
	for k := uint64(0); k < keys; k++ {
		m.Store(k, k+1)
	}
	runtime.GC()
	after := rssKb()
	seq := mapSeq(keys, keys, readPct, zipf == 1)
	per := keys / threads
	var wg sync.WaitGroup
	var missing, bad atomic.Uint64
	start := make(chan struct{})
	for t := uint64(0); t < threads; t++ {
		wg.Add(1)
		go func(s []uint64) {
			defer wg.Done()
			<-start
			var miss, wrong uint64
			for i, e := range s {
				k := e &^ writeBit
				if e&writeBit != 0 {
					m.Store(k, k+1+uint64(i)<<20)
				} else if v, ok := m.Load(k); !ok {
					miss++
				} else if v.(uint64)&0xfffff != (k+1)&0xfffff {
					wrong++
				}
			}
			missing.Add(miss)
			bad.Add(wrong)
		}(seq[t*per : (t+1)*per])
	}
	time.Sleep(10 * time.Millisecond)
	sp := startSpan()
	close(start)
	wg.Wait()
	sp.reportWith(per*threads, fmt.Sprintf(" rss_bytes_per_key=%.1f",
		float64(after-before)*1024/float64(keys)))
	if missing.Load() != 0 || bad.Load() != 0 {
		fail("map: %d loads missed, %d wrong values", missing.Load(), bad.Load())
	}
}

// singleflightDo is set by go_peer_sf.go when x/sync is available.
var singleflightDo func(key string, fn func() (interface{}, error)) (interface{}, error, bool)

func runHerd(threads, keys, computeNs, sf uint64) {
	if sf == 1 && singleflightDo == nil {
		fail("herd: built without golang.org/x/sync (golang-golang-x-sync-dev)")
	}
	var m sync.Map
	var computes atomic.Uint64
	compute := func(key uint64) uint64 {
		computes.Add(1)
		time.Sleep(time.Duration(computeNs))
		return key*3 + 1
	}
	// the seed's getOrCompute, as written
	getOrCompute := func(key uint64) uint64 {
		if v, ok := m.Load(key); ok {
			return v.(uint64)
		}
		v := compute(key)
		actual, _ := m.LoadOrStore(key, v)
		return actual.(uint64)
	}
	// with singleflight around the compute
	getOrComputeSF := func(key uint64) uint64 {
		if v, ok := m.Load(key); ok {
			return v.(uint64)
		}
		v, _, _ := singleflightDo(strconv.FormatUint(key, 10), func() (interface{}, error) {
			if v, ok := m.Load(key); ok {
				return v, nil
			}
			v := compute(key)
			m.Store(key, v)
			return v, nil
		})
		return v.(uint64)
	}
	get := getOrCompute
	if sf == 1 {
		get = getOrComputeSF
	}
	var wg sync.WaitGroup
	var bad atomic.Uint64
	start := make(chan struct{})
	for t := uint64(0); t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for k := uint64(1000); k < 1000+keys; k++ {
				if get(k) != k*3+1 {
					bad.Add(1)
				}
			}
		}()
	}
	time.Sleep(10 * time.Millisecond)
	sp := startSpan()
	close(start)
	wg.Wait()
	sp.reportWith(threads*keys, fmt.Sprintf(" computes=%d", computes.Load()))
	if bad.Load() != 0 {
		fail("herd: %d wrong values", bad.Load())
	}
}
