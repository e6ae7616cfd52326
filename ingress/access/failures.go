package access

import (
	"net/netip"
	"sync"
	"time"
)

// failureLimiter counts failed authentications per source and blocks a source that
// failed `limit` times within `window` of its first failure, until that window ends.
// While blocked, a source's requests are refused before any token is looked at — also
// its valid ones — or guessing would go on unhindered. Counts are per instance: with N
// replicas a source gets N × limit guesses per window, which changes nothing against
// 190-bit tokens and keeps authentication off Valkey.
//
// Sources are client IPs; IPv6 addresses count per /64, the block a single host
// usually controls. The table holds at most maxSources sources; beyond that, failures
// of new sources share one overflow bucket, so an attacker spraying addresses blocks
// himself (and the other overflowed sources) rather than escaping the count.
type failureLimiter struct {
	limit      int
	window     time.Duration
	maxSources int

	mu       sync.Mutex
	sources  map[string]*failWindow
	sweepAt  time.Time
	overflow failWindow
}

type failWindow struct {
	start time.Time
	n     int
}

func newFailureLimiter(limit int, window time.Duration, maxSources int) *failureLimiter {
	return &failureLimiter{limit: limit, window: window, maxSources: maxSources, sources: map[string]*failWindow{}}
}

// sourceKey maps a client IP to its counting unit.
func sourceKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// blocked reports whether src is blocked at now, and until when.
func (l *failureLimiter) blocked(src string, now time.Time) (time.Time, bool) {
	if l.limit <= 0 {
		return time.Time{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range []*failWindow{l.sources[src], l.overflowFor(src)} {
		if w != nil && w.n >= l.limit && now.Before(w.start.Add(l.window)) {
			return w.start.Add(l.window), true
		}
	}
	return time.Time{}, false
}

// overflowFor returns the overflow bucket when src is not tracked and the table is full.
func (l *failureLimiter) overflowFor(src string) *failWindow {
	if _, ok := l.sources[src]; ok || len(l.sources) < l.maxSources {
		return nil
	}
	return &l.overflow
}

// fail counts a failure of src at now and reports whether src is now blocked.
func (l *failureLimiter) fail(src string, now time.Time) (time.Time, bool) {
	if l.limit <= 0 {
		return time.Time{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.sources[src]
	if w == nil {
		if len(l.sources) >= l.maxSources {
			l.sweep(now)
		}
		if len(l.sources) >= l.maxSources {
			w = &l.overflow
		} else {
			w = &failWindow{}
			l.sources[src] = w
		}
	}
	if w.n == 0 || !now.Before(w.start.Add(l.window)) {
		w.start, w.n = now, 0
	}
	w.n++
	return w.start.Add(l.window), w.n >= l.limit
}

// sweep forgets the sources whose window ended; at most once per window.
func (l *failureLimiter) sweep(now time.Time) {
	if now.Before(l.sweepAt) {
		return
	}
	l.sweepAt = now.Add(l.window)
	for k, w := range l.sources {
		if !now.Before(w.start.Add(l.window)) {
			delete(l.sources, k)
		}
	}
}
