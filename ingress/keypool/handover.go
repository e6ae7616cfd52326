package keypool

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/schemas"
)

// Handing local admissions over to Valkey.
//
// A lease granted while Valkey was unreachable (Local) has no reservation in Valkey:
// only this instance's view counts it. When Valkey answers again the pool goes back to
// reserving there, and the outage's local admissions would be invisible to the
// reservation script until the processors count their request events — for a call
// still running upstream, that is when it ends. The script would admit that headroom a
// second time. So each local lease gets a reservation id like any other, and the
// refresh that ends the outage writes the local leases that may still be uncounted
// into the pairs' pending hashes before the pool trusts Valkey again. The request event
// carries the id, and the processor that counts it deletes the entry, as for any
// reservation. Leases that ended more than handoverLag before the handover are taken to
// be counted already and are left out; one counted before the handover all the same
// leaves its entry to expire (end of its minute plus schemas.MinuteCounterGrace):
// counted twice for that long, which errs on the side of the quota.

// handoverLag is how long after a counted local lease ended its request event may
// still be on its way to the processors' counters.
const handoverLag = 10 * time.Second

// localLease is what a local lease took, as its pending entry would say.
type localLease struct {
	project, model string
	minute         int64
	tokens         int64
	expiresMs      int64
	// ended is when the lease was released as counted; zero while in flight.
	ended time.Time
}

// addLocal records a local lease until it is released uncounted or handed over.
func (p *Pool) addLocal(id string, l localLease) {
	p.localMu.Lock()
	defer p.localMu.Unlock()
	if p.local == nil {
		p.local = map[string]localLease{}
	}
	if len(p.local) >= maxOrphans {
		// A long outage: entries that would no longer count make room.
		for old, ol := range p.local {
			if ol.expiresMs <= l.expiresMs-2*time.Minute.Milliseconds() {
				delete(p.local, old)
			}
		}
		if len(p.local) >= maxOrphans {
			p.metrics.orphansDropped.Inc()
			return
		}
	}
	p.local[id] = l
}

// endLocal settles a local lease: one the upstream did not count is dropped, a counted
// one waits for the handover (its event may not be counted yet). It reports whether the
// lease was still waiting for the handover (false: it may be in Valkey already).
func (p *Pool) endLocal(id string, counted bool, now time.Time) bool {
	p.localMu.Lock()
	defer p.localMu.Unlock()
	l, ok := p.local[id]
	switch {
	case !ok:
	case counted:
		l.ended = now
		p.local[id] = l
	default:
		delete(p.local, id)
	}
	return ok
}

// handOver writes the local leases whose entries would still count at now into
// Valkey's pending hashes. On failure they stay recorded for the next attempt.
func (p *Pool) handOver(ctx context.Context, now time.Time) error {
	p.localMu.Lock()
	ids := make([]string, 0, len(p.local))
	leases := make([]localLease, 0, len(p.local))
	for id, l := range p.local {
		if l.expiresMs <= now.UnixMilli() || (!l.ended.IsZero() && now.Sub(l.ended) > handoverLag) {
			delete(p.local, id)
			continue
		}
		ids = append(ids, id)
		leases = append(leases, l)
	}
	p.localMu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	execs := make([]valkey.LuaExec, len(ids))
	for i, l := range leases {
		at := time.Unix(l.minute*60, 0)
		day := schemas.PacificDay(at)
		execs[i] = valkey.LuaExec{
			Keys: []string{p.keys.Pending(l.project, l.model), p.keys.PendingMinute(l.project, l.model, l.minute), p.keys.PendingDay(l.project, l.model, day)},
			Args: []string{ids[i], pendingEntry(l.minute, l.tokens, l.expiresMs, day), strconv.FormatInt(l.tokens, 10),
				strconv.FormatInt(l.expiresMs, 10), strconv.FormatInt(schemas.DayCounterExpiry(at).UnixMilli(), 10)},
		}
	}
	for _, r := range p.handoverScript.ExecMulti(ctx, p.client, execs...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("hand %d local admissions over to valkey: %w", len(ids), err)
		}
	}
	p.localMu.Lock()
	for _, id := range ids {
		delete(p.local, id)
	}
	p.localMu.Unlock()
	return nil
}
