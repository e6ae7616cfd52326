// Package health serves the liveness and readiness endpoints both binaries expose.
// Liveness says the process runs; readiness says every dependency it needs answers. A
// check that fails is reported by name with its error, so an operator sees which
// dependency is down from one curl.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"
)

// CheckFunc returns nil when the dependency answers.
type CheckFunc func(ctx context.Context) error

// Checks is a set of named readiness checks. The zero value is ready to use.
type Checks struct {
	mu     sync.RWMutex
	checks map[string]CheckFunc
	// degraded checks are reported but do not fail readiness: the service keeps
	// serving without them (the ingress without Valkey, say).
	degraded map[string]bool
}

// Add registers a check that fails readiness when it fails.
func (c *Checks) Add(name string, f CheckFunc) { c.add(name, f, false) }

// AddDegraded registers a check that is reported but leaves the service ready: the
// service has a documented way to work without the dependency.
func (c *Checks) AddDegraded(name string, f CheckFunc) { c.add(name, f, true) }

func (c *Checks) add(name string, f CheckFunc, degraded bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.checks == nil {
		c.checks = map[string]CheckFunc{}
		c.degraded = map[string]bool{}
	}
	c.checks[name] = f
	c.degraded[name] = degraded
}

// Result is the outcome of all checks.
type Result struct {
	Ready    bool              `json:"ready"`
	Degraded bool              `json:"degraded"`
	Checks   map[string]string `json:"checks"`
}

// Run runs every check concurrently, each bounded by timeout.
func (c *Checks) Run(ctx context.Context, timeout time.Duration) Result {
	c.mu.RLock()
	names := make([]string, 0, len(c.checks))
	for n := range c.checks {
		names = append(names, n)
	}
	c.mu.RUnlock()
	sort.Strings(names)

	res := Result{Ready: true, Checks: make(map[string]string, len(names))}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		c.mu.RLock()
		f := c.checks[n]
		c.mu.RUnlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			errs[i] = f(cctx)
		}()
	}
	wg.Wait()
	for i, n := range names {
		if errs[i] == nil {
			res.Checks[n] = "ok"
			continue
		}
		res.Checks[n] = errs[i].Error()
		c.mu.RLock()
		degraded := c.degraded[n]
		c.mu.RUnlock()
		if degraded {
			res.Degraded = true
		} else {
			res.Ready = false
		}
	}
	return res
}

// LiveHandler answers 200 while the process can serve HTTP at all.
func LiveHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"live":true}`))
	})
}

// ReadyHandler answers 200 when every non-degraded check passes, 503 otherwise, with
// the result of each check in the body.
func (c *Checks) ReadyHandler(timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := c.Run(r.Context(), timeout)
		w.Header().Set("Content-Type", "application/json")
		if !res.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(res)
	})
}
