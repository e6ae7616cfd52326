//go:build faults

package faults

import (
	"context"
	"sync"
	"time"
)

// load sends requests from several workers until stopped. Each worker is sequential:
// its next request starts after the previous answer was read, so the order of one
// worker's events is the order of its requests.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	results []result
}

// startLoad starts workers against base. Worker w sends, in turn, each protocol, every
// fourth request a stream, with pace between requests.
func startLoad(base, token string, workers int, pace time.Duration) *load {
	return startLoadOf(base, token, workers, pace, true)
}

// startLoadOf is startLoad with or without streams.
func startLoadOf(base, token string, workers int, pace time.Duration, streams bool) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			hc := newHTTPClient(30 * time.Second)
			for seq := 0; ctx.Err() == nil; seq++ {
				c := call{Proto: protocols[(w+seq)%3], Stream: streams && seq%4 == 3}
				// The request runs to its end even when the load stops: stopping must
				// not turn served requests into client disconnects.
				r := send(context.Background(), hc, base, token, c)
				r.Worker, r.Seq = w, seq
				l.mu.Lock()
				l.results = append(l.results, r)
				l.mu.Unlock()
				switch {
				case r.Err != nil:
					// The ingress is down (killed, restarting): do not spin.
					sleepCtx(ctx, 50*time.Millisecond)
				case r.Status >= 400:
					// A refusal is quick: pace it so it does not crowd out the rest.
					sleepCtx(ctx, 10*time.Millisecond)
				}
				sleepCtx(ctx, pace)
			}
		}()
	}
	return l
}

// stop ends the load after the requests in flight finished and returns every result.
func (l *load) stop() []result {
	l.cancel()
	l.wg.Wait()
	return l.snapshot()
}

func (l *load) snapshot() []result {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]result(nil), l.results...)
}

// count returns the results so far and how many were served.
func (l *load) count() (all, served int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.results {
		if r.served() {
			served++
		}
	}
	return len(l.results), served
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// waitServed waits until the load has served n more requests than before, or timeout.
func (l *load) waitServed(n int, timeout time.Duration) bool {
	_, base := l.count()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, s := l.count(); s >= base+n {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
