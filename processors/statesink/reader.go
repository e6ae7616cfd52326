package statesink

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/schemas"
)

// Reader reads the state the Writer maintains, for the ingress, the admin API and the
// consistency check. It never writes.
type Reader struct {
	client valkey.Client
	keys   schemas.Keys
}

// NewReader returns a Reader of the state under keys.Prefix.
func NewReader(client valkey.Client, keys schemas.Keys) *Reader {
	return &Reader{client: client, keys: keys}
}

// Usage is what a (project, model) pair has used of its quotas in the current windows.
type Usage struct {
	MinuteRequests int64
	MinuteTokens   int64
	DayRequests    int64
}

// Pair names a (project, model) pair.
type Pair struct{ Project, Model string }

// Usage returns the pair's counters for the minute and Pacific day of now.
func (r *Reader) Usage(ctx context.Context, project, model string, now time.Time) (Usage, error) {
	u, err := r.UsageOf(ctx, []Pair{{project, model}}, now)
	if err != nil {
		return Usage{}, err
	}
	return u[0], nil
}

// UsageOf returns the counters of several pairs in one pipelined round trip, in the
// order of pairs.
func (r *Reader) UsageOf(ctx context.Context, pairs []Pair, now time.Time) ([]Usage, error) {
	minute, day := schemas.MinuteOf(now), schemas.PacificDay(now)
	cmds := make(valkey.Commands, 0, len(pairs))
	for _, p := range pairs {
		// The three keys share the project's hash tag, so one MGET works on a cluster.
		cmds = append(cmds, r.client.B().Mget().Key(
			r.keys.MinuteRequests(p.Project, p.Model, minute),
			r.keys.MinuteTokens(p.Project, p.Model, minute),
			r.keys.DayRequests(p.Project, p.Model, day),
		).Build())
	}
	out := make([]Usage, len(pairs))
	for i, res := range r.client.DoMulti(ctx, cmds...) {
		vals, err := res.ToArray()
		if err != nil {
			return nil, fmt.Errorf("read usage of %s/%s: %w", pairs[i].Project, pairs[i].Model, err)
		}
		var n [3]int64
		for j := range n {
			if n[j], err = vals[j].AsInt64(); err != nil && !valkey.IsValkeyNil(err) {
				return nil, fmt.Errorf("read usage of %s/%s: %w", pairs[i].Project, pairs[i].Model, err)
			}
		}
		out[i] = Usage{MinuteRequests: n[0], MinuteTokens: n[1], DayRequests: n[2]}
	}
	return out, nil
}

// Cooldown returns the pair's cool-down entry, or nil when it is not cooling down.
func (r *Reader) Cooldown(ctx context.Context, project, model string) (*schemas.BlacklistEntry, error) {
	return r.entry(ctx, r.keys.Cooldown(project, model))
}

// Blacklisted returns the entry of a disabled key, or nil when the key is enabled.
func (r *Reader) Blacklisted(ctx context.Context, project, keyHash string) (*schemas.BlacklistEntry, error) {
	return r.entry(ctx, r.keys.Blacklist(project, keyHash))
}

func (r *Reader) entry(ctx context.Context, key string) (*schemas.BlacklistEntry, error) {
	b, err := r.client.Do(ctx, r.client.B().Get().Key(key).Build()).AsBytes()
	if valkey.IsValkeyNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	var e schemas.BlacklistEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	return &e, nil
}

// Health is a key's health as the processors derived it from its attempts.
type Health struct {
	// OKMs is the time of the latest success (or re-enable), 0 if none is known.
	OKMs int64
	// FailMs and FailKind are the latest failure's time and kind ("upstream",
	// "timeout", ...), also when a later success followed it.
	FailMs   int64
	FailKind string
	// ConsecutiveFailures counts the failures after OKMs.
	ConsecutiveFailures int64
	// LatN attempts took LatSumMs milliseconds together.
	LatN     int64
	LatSumMs int64
}

// Failing reports whether the key's latest word was a failure.
func (h Health) Failing() bool { return h.ConsecutiveFailures > 0 }

// MeanLatencyMs is the mean attempt latency, 0 without attempts.
func (h Health) MeanLatencyMs() float64 {
	if h.LatN == 0 {
		return 0
	}
	return float64(h.LatSumMs) / float64(h.LatN)
}

// Health returns the key's health; a key without attempts in the last
// schemas.HealthTTL has the zero Health.
func (r *Reader) Health(ctx context.Context, project, keyHash string) (Health, error) {
	res := r.client.DoMulti(ctx,
		r.client.B().Hgetall().Key(r.keys.Health(project, keyHash)).Build(),
		r.client.B().Zcard().Key(r.keys.Fails(project, keyHash)).Build())
	m, err := res[0].AsStrMap()
	if err != nil {
		return Health{}, fmt.Errorf("read health of %s: %w", keyHash, err)
	}
	n, err := res[1].AsInt64()
	if err != nil {
		return Health{}, fmt.Errorf("read failures of %s: %w", keyHash, err)
	}
	num := func(f string) int64 { v, _ := strconv.ParseInt(m[f], 10, 64); return v }
	return Health{
		OKMs:                num(schemas.HealthOKMs),
		FailMs:              num(schemas.HealthFailMs),
		FailKind:            m[schemas.HealthFailKind],
		ConsecutiveFailures: n,
		LatN:                num(schemas.HealthLatN),
		LatSumMs:            num(schemas.HealthLatSumMs),
	}, nil
}

// BlacklistStats are the seed's getBlacklistStats, over cool-downs and disabled keys.
type BlacklistStats struct {
	// TotalEntries counts the entries present. Valkey drops an entry when its expiry
	// passes, so every entry present is active: ActiveEntries equals TotalEntries and
	// ExpiredEntries, kept for the seed's shape, is always 0.
	TotalEntries   int
	ActiveEntries  int
	ExpiredEntries int
	// Cooldowns are (project, model) pairs cooling down; DisabledKeys are keys
	// disabled until enabled.
	Cooldowns    int
	DisabledKeys int
	// ByReason counts active entries by reason (rpm_exceeded, api_key_invalid, ...);
	// ByModel counts cool-downs by model (disabled keys have no model).
	ByReason map[string]int
	ByModel  map[string]int
}

// BlacklistStats scans every cool-down and disabled key under the prefix. It costs a
// SCAN of the whole keyspace: an admin call, not one for the request path.
func (r *Reader) BlacklistStats(ctx context.Context) (BlacklistStats, error) {
	st := BlacklistStats{ByReason: map[string]int{}, ByModel: map[string]int{}}
	// SCAN walks the whole keyspace either way; matching on the server keeps the
	// applied marks and counters off the wire.
	var keys []string
	for _, node := range r.client.Nodes() {
		for _, kind := range []string{"cooldown", "blacklist"} {
			glob := r.keys.Prefix + "{*}:" + kind + ":*"
			if err := scan(ctx, node, glob, func(k string) { keys = append(keys, k) }); err != nil {
				return st, err
			}
		}
	}
	seen := map[string]bool{}
	for len(keys) > 0 {
		page := keys[:min(len(keys), snapshotPage)]
		keys = keys[len(page):]
		cmds := make(valkey.Commands, len(page))
		for i, k := range page {
			cmds[i] = r.client.B().Get().Key(k).Build()
		}
		for i, res := range r.client.DoMulti(ctx, cmds...) {
			b, err := res.AsBytes()
			if valkey.IsValkeyNil(err) || seen[page[i]] {
				continue // expired since the scan, or listed by two nodes
			}
			if err != nil {
				return st, fmt.Errorf("read %s: %w", page[i], err)
			}
			seen[page[i]] = true
			var e schemas.BlacklistEntry
			if err := json.Unmarshal(b, &e); err != nil {
				return st, fmt.Errorf("decode %s: %w", page[i], err)
			}
			st.TotalEntries++
			st.ActiveEntries++
			st.ByReason[e.Reason]++
			if strings.Contains(page[i], "}:cooldown:") {
				st.Cooldowns++
				st.ByModel[e.Model]++
			} else {
				st.DisabledKeys++
			}
		}
	}
	return st, nil
}
