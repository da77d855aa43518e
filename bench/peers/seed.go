// bench/peers/seed.go: the pool family's streaming cases (bench/pool.h) as
// Go's own program, so weft-bench can set Go's runtime beside weft's pool in
// the same run. Built by bench/meson.build when Debian's golang-go is
// installed (standard library only, no module, nothing downloaded); run by
// bench/pool.c's "go" strategy as a child process:
//
//	weft-go-seed JOBS WORKERS QUEUE RESULTS SLEEP_NS
//
// The shape is bench/pool.c's: WORKERS goroutines range over a jobs channel
// of QUEUE slots (the pool's queue, its backpressure), one producer
// goroutine sends job ids 0..JOBS-1 into it, each job computes mix(id)
// (the same splitmix64 as pool.c), sleeps SLEEP_NS if nonzero, and sends
// {id, mix(id)} into a results channel of RESULTS slots that the main
// goroutine drains. GOMAXPROCS is Go's default (the online cores). Timed
// from the producer's start to the last result received, as pool.c; CPU
// and context switches are this process's getrusage over the same span.
// The results are checked as pool.c checks them (each id once, each value
// right): a wrong run exits 1 with the reason on stderr. Success prints one
// line on stdout (peak_rss_kb: this process's VmHWM):
//
//	jobs=N wall_ns=W cpu_ns=C ctx_switches=S peak_rss_kb=R
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
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
	fmt.Fprintln(os.Stderr, "usage: weft-go-seed JOBS WORKERS QUEUE RESULTS SLEEP_NS")
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

func main() {
	if len(os.Args) != 6 {
		usage()
	}
	jobs, workers, queue, resultsCap, sleepNs := arg(1), arg(2), arg(3), arg(4), arg(5)
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

	cpu0, sw0 := rusage()
	t0 := time.Now()
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
	wall := time.Since(t0)
	cpu1, sw1 := rusage()

	want := jobs / 2 * (jobs - 1)
	if jobs%2 == 1 {
		want = jobs * ((jobs - 1) / 2)
	}
	if bad != 0 || idsum != want {
		fmt.Fprintf(os.Stderr, "wrong results: %d bad, sum of ids %d (want %d)\n", bad, idsum, want)
		os.Exit(1)
	}
	fmt.Printf("jobs=%d wall_ns=%d cpu_ns=%d ctx_switches=%d peak_rss_kb=%d\n",
		jobs, wall.Nanoseconds(), (cpu1 - cpu0).Nanoseconds(), sw1-sw0, peakRSSKb())
}
