package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/geminicodeapi/gca/ingress/cache"
)

// UpstreamHealth is the seed's health-check cache: the upstream is probed (a models
// list with a pool key: cheap, no quota spent) at most once per TTL, 5 minutes by
// default, and readiness reports the cached result. The gateway does not depend on it
// to serve — it fails over and answers 503 itself when no upstream works — so it is a
// degraded check, for the operator's eyes.
type UpstreamHealth struct {
	probe func(ctx context.Context) error
	c     *cache.Cache[string]
}

const upstreamHealthKey = "upstream"

// NewUpstreamHealth caches probe's outcome for ttl.
func NewUpstreamHealth(probe func(ctx context.Context) error, ttl time.Duration, now func() time.Time) *UpstreamHealth {
	return &UpstreamHealth{probe: probe, c: cache.New[string]("upstream_health", 1, ttl, now)}
}

// Check returns the cached outcome, probing when it expired.
func (h *UpstreamHealth) Check(ctx context.Context) error {
	msg, ok := h.c.Get(upstreamHealthKey)
	if !ok {
		msg = ""
		if err := h.probe(ctx); err != nil {
			msg = err.Error()
		}
		h.c.Set(upstreamHealthKey, msg)
	}
	if msg != "" {
		return errors.New(msg)
	}
	return nil
}

// Stats returns the cache's counters.
func (h *UpstreamHealth) Stats() cache.Stats { return h.c.Stats() }
