package keypool

import (
	"context"
	"fmt"
	"time"

	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

// Outcome is what became of the attempt a lease was granted for.
type Outcome struct {
	// Counted says the upstream accepted the attempt, so it consumed quota and the
	// processors will count it (and delete its reservation). False for a 429, a 5xx, an
	// invalid key, a timeout or a network error.
	Counted bool
	// Failure is the upstream failure (gemini.Classify); FailureNone for a success.
	// Timeouts and network errors are FailureUpstream: never the key's fault.
	Failure gemini.Failure
	// RetryDelay is the 429's retryDelay, if any.
	RetryDelay time.Duration
	// QuotaExceeded and QuotaID say which quota a 429 named.
	QuotaExceeded schemas.QuotaExceeded
	QuotaID       string
	// Latency of the attempt, for the key's latency average.
	Latency time.Duration
	// InputTokens is the upstream's promptTokenCount when known; it replaces the
	// estimate in the local view.
	InputTokens int64
	// At is when the attempt started: the moment a cool-down is computed from, for
	// the key-state event and the local view alike, so both name the same end. Zero
	// means the release time.
	At time.Time
}

// OutcomeOf builds an Outcome from a classified upstream answer.
func OutcomeOf(c gemini.Classified, counted bool, latency time.Duration) Outcome {
	return Outcome{
		Counted:       counted,
		Failure:       c.Failure,
		RetryDelay:    c.RetryDelay,
		QuotaExceeded: schemas.QuotaExceeded{RPM: c.RPM, TPM: c.TPM, RPD: c.RPD},
		QuotaID:       c.QuotaID,
		Latency:       latency,
	}
}

// CooldownFor decides how long a 429 cools its (project, model) pair down; it is the
// one place that decides it, and its until goes into the key-state event's until_ms.
//
//   - per-day quota: until the next midnight America/Los_Angeles, reason rpd_exceeded;
//   - per-minute quota (RPM or input TPM): for the upstream's retryDelay, or to the end
//     of the minute when it gave none; reason rpm_exceeded or tpm_exceeded;
//   - a 429 without details: like a per-minute quota, reason quota_exceeded.
//
// Anything else (5xx, timeouts, invalid keys) cools nothing: zero until and reason.
// until is whole milliseconds, as the event carries it.
func CooldownFor(o Outcome, now time.Time) (until time.Time, reason string, qe schemas.QuotaExceeded) {
	midnight := schemas.NextPacificMidnight(now)
	switch o.Failure {
	case gemini.FailureDayQuota:
		return midnight, schemas.ReasonRPD, schemas.QuotaExceeded{RPD: true}
	case gemini.FailureMinuteQuota, gemini.FailureQuotaUnknown:
		qe = schemas.QuotaExceeded{RPM: o.QuotaExceeded.RPM, TPM: o.QuotaExceeded.TPM}
		switch {
		case o.Failure == gemini.FailureQuotaUnknown:
			reason = schemas.ReasonQuota
		case qe.TPM && !qe.RPM:
			reason = schemas.ReasonTPM
		case qe.RPM:
			reason = schemas.ReasonRPM
		default:
			reason = schemas.ReasonQuota
		}
		until = schemas.MinuteEnd(now)
		if o.RetryDelay > 0 {
			until = now.Add(o.RetryDelay)
		}
		// No per-minute cool-down outlasts the day's quota reset.
		if until.After(midnight) {
			until = midnight
		}
		return time.UnixMilli(until.UnixMilli()), reason, qe
	}
	return time.Time{}, "", schemas.QuotaExceeded{}
}

// Release ends a lease with the attempt's outcome. An attempt the upstream did not
// count has its reservation deleted at once (a counted one is deleted by the
// processor that counts it, in the same script). The outcome also updates this
// instance's view immediately, so it stops using a key or pair before the key-state
// event has made the round trip through Kafka and the processors: a 429 cools the pair
// down (CooldownFor), an invalid or forbidden key is disabled, a 5xx or timeout counts
// toward the key's circuit — never toward a cool-down. Releasing a lease twice does
// nothing. The error reports a failed deletion; the reservation is then retried by the
// refresh and expires by itself in any case.
func (p *Pool) Release(ctx context.Context, l *Lease, o Outcome) error {
	if l == nil || !l.released.CompareAndSwap(false, true) {
		return nil
	}
	now := p.opts.Now()
	p.metrics.releases.WithLabelValues(o.Failure.String()).Inc()
	k := l.Key
	s := p.view.pair(k.project.id, l.Model)
	w := p.windowOf(l.At)
	minute, day := w.minute, w.day

	s.mu.Lock()
	switch {
	case !o.Counted && l.Local:
		if s.offEpoch == l.epoch && s.offMinute == minute {
			s.offReq, s.offTok = max(s.offReq-1, 0), max(s.offTok-l.EstimatedTokens, 0)
		}
		if s.offEpoch == l.epoch && s.offDay == day {
			s.offDayReq = max(s.offDayReq-1, 0)
		}
	case !o.Counted:
		if s.minute == minute {
			s.pendReq, s.pendTok = max(s.pendReq-1, 0), max(s.pendTok-l.EstimatedTokens, 0)
		}
		if s.day == day {
			s.pendDay = max(s.pendDay-1, 0)
		}
	case o.InputTokens > 0 && l.Local:
		if s.offEpoch == l.epoch && s.offMinute == minute {
			s.offTok = max(s.offTok+o.InputTokens-l.EstimatedTokens, 0)
		}
	case o.InputTokens > 0:
		if s.minute == minute {
			s.pendTok = max(s.pendTok+o.InputTokens-l.EstimatedTokens, 0)
		}
	}
	at := o.At
	if at.IsZero() {
		at = now
	}
	if until, reason, _ := CooldownFor(o, at); !until.IsZero() && until.After(s.localCooldownUntil) {
		s.localCooldownUntil, s.localCooldownReason = until, reason
	}
	s.mu.Unlock()

	ks := p.view.key(k.hash)
	ks.mu.Lock()
	switch o.Failure {
	case gemini.FailureKeyInvalid:
		ks.localDisabled, ks.localDisabledAt = schemas.ReasonKeyInvalid, now
	case gemini.FailureForbidden:
		ks.localDisabled, ks.localDisabledAt = schemas.ReasonForbidden, now
	case gemini.FailureUpstream:
		ks.fails = append(ks.fails, now)
		if n := max(p.opts.MaxFails, 1) * 4; len(ks.fails) > n {
			ks.fails = append(ks.fails[:0], ks.fails[len(ks.fails)-n:]...)
		}
	case gemini.FailureNone, gemini.FailureClient:
		// The upstream answered: the key works and is reachable.
		ks.fails = ks.fails[:0]
		ks.localDisabled = ""
	}
	if o.Latency > 0 && (o.Failure == gemini.FailureNone || o.Failure == gemini.FailureUpstream) {
		ms := float64(o.Latency) / float64(time.Millisecond)
		if ks.ewmaN == 0 {
			ks.ewmaMs = ms
		} else {
			ks.ewmaMs += ewmaAlpha * (ms - ks.ewmaMs)
		}
		ks.ewmaN++
	}
	ks.mu.Unlock()

	if l.Local && p.endLocal(l.Reservation, o.Counted, now) {
		// Not in Valkey yet: the handover writes it, or not at all if uncounted.
		return nil
	}
	if o.Counted || l.Reservation == "" {
		return nil
	}
	// Delete even when the caller's context is cancelled (the client went away): the
	// reservation would otherwise hold quota until it expires.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.Timeout)
	defer cancel()
	start := time.Now()
	o2 := orphan{project: k.project.id, model: l.Model, id: l.Reservation}
	_, err := p.settle(tctx, []orphan{o2})
	p.metrics.scriptSeconds.WithLabelValues("release").Observe(time.Since(start).Seconds())
	if err != nil {
		p.metrics.valkeyErrors.WithLabelValues("release").Inc()
		p.addOrphan(o2)
		p.setDegraded(err)
		return fmt.Errorf("delete reservation %s of %s/%s: %w", l.Reservation, k.project.id, l.Model, err)
	}
	return nil
}

// ClearCooldown lifts this instance's own cool-down of (project, model), after an
// operator cleared it; Valkey's entry is removed by the processors from the
// clear_cooldown event.
func (p *Pool) ClearCooldown(project, model string) {
	s := p.view.pair(project, NormalizeModel(model))
	s.mu.Lock()
	s.localCooldownUntil, s.localCooldownReason = time.Time{}, ""
	s.cooldownUntil, s.cooldownReason = time.Time{}, ""
	s.mu.Unlock()
}

// MarkEnabled clears this instance's own disabled mark of a key, after a successful
// revalidation; Valkey's blacklist entry is removed by the processors from the enable
// event.
func (p *Pool) MarkEnabled(keyHash string) {
	ks := p.view.key(keyHash)
	ks.mu.Lock()
	ks.localDisabled = ""
	ks.fails = ks.fails[:0]
	ks.mu.Unlock()
}
