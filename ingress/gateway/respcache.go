package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/geminicodeapi/gca/ingress/cache"
	"github.com/geminicodeapi/gca/ingress/upstream"
)

// responseCache answers identical non-streaming generateContent requests from memory
// (the seed's request cache). It is off by default: Gemini's answers are not
// deterministic, and a cached answer spends no quota, which is the point and also why
// an operator must choose it. The key is a hash of what goes upstream — the model and
// the Gemini request body after translation — so an OpenAI and a native client asking
// the same thing share an entry, and the client's own credentials never take part.
type responseCache struct {
	c *cache.Cache[[]byte]
}

func newResponseCache(size int, ttl time.Duration, now func() time.Time) *responseCache {
	return &responseCache{c: cache.New[[]byte]("response", size, ttl, now)}
}

func (r *responseCache) key(call *upstream.Call) string {
	h := sha256.New()
	h.Write([]byte(call.Model))
	h.Write([]byte{0})
	h.Write([]byte(call.Method))
	h.Write([]byte{0})
	h.Write(call.Body)
	return hex.EncodeToString(h.Sum(nil))
}

// cacheable says whether a call may be answered from the cache: whole answers only,
// never streams, never a pass-through client's (whose keys, not ours, would be spent).
func cacheable(call *upstream.Call) bool {
	return !call.Stream && call.Method == methodGenerate && len(call.Subset) == 0
}

func (r *responseCache) get(call *upstream.Call) (*upstream.Response, bool) {
	b, ok := r.c.Get(r.key(call))
	if !ok {
		return nil, false
	}
	return &upstream.Response{Status: http.StatusOK, Body: b}, true
}

func (r *responseCache) put(call *upstream.Call, resp *upstream.Response) {
	if resp.Status == http.StatusOK && resp.Stream == nil {
		r.c.Set(r.key(call), resp.Body)
	}
}

// Stats returns the cache's counters.
func (r *responseCache) Stats() cache.Stats { return r.c.Stats() }
