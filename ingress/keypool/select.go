package keypool

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/geminicodeapi/gca/schemas"
)

// SelectRequest says what a request needs from the pool.
type SelectRequest struct {
	// Model is the Gemini model, with or without the "models/" prefix.
	Model string
	// EstimatedTokens is the request's estimated input tokens, checked against TPM.
	EstimatedTokens int64
	// Exclude lists the hashes of keys already tried for this request.
	Exclude []string
	// Subset, when set, is the pool for this request instead of the configured keys:
	// a pass-through client's own keys (see Pool.PassthroughKey).
	Subset []*Key
	// Strategy overrides the pool's default strategy.
	Strategy Strategy
}

// Lease is a key granted to one attempt. Release it exactly once with the attempt's
// outcome.
type Lease struct {
	// Key is the key to call Gemini with.
	Key *Key
	// Model is the normalized model.
	Model string
	// Reservation is the id of the pending entry made in Valkey (for a Local lease,
	// made when Valkey answers again: handover.go); it goes into the request event's
	// Attempt.Reservation so the processor that counts the attempt deletes it.
	Reservation string
	// Local is set when the lease was granted without Valkey (fail-open): the pool
	// was degraded and the project had headroom in the local view.
	Local bool
	// EstimatedTokens is what was reserved against TPM.
	EstimatedTokens int64
	// At is when the lease was granted; quota windows are taken from it.
	At time.Time

	epoch    uint64
	released atomic.Bool
}

// Reasons of an ExhaustedError.
const (
	// ExhaustedQuota: every project is out of RPM, TPM or RPD headroom.
	ExhaustedQuota = "quota"
	// ExhaustedCooldown: every project with headroom is cooling down after a 429.
	ExhaustedCooldown = "cooldown"
	// ExhaustedDisabled: every candidate key is disabled or its circuit is open.
	ExhaustedDisabled = "disabled"
	// ExhaustedNoKeys: no key is left to try (none configured, or all excluded).
	ExhaustedNoKeys = "no_keys"
	// ExhaustedModelNotAllowed: no key may serve the model.
	ExhaustedModelNotAllowed = "model_not_allowed"
)

// ExhaustedError says that no key can serve the request now, and when one may.
type ExhaustedError struct {
	Reason string
	// RetryAt is the earliest moment a key could be usable again: a cool-down's end,
	// the end of the minute for RPM/TPM, the next Pacific midnight for RPD, when a
	// circuit closes. Zero when unknown (disabled keys, no keys).
	RetryAt time.Time
	Model   string
	// QuotaExceeded says which quotas were found exhausted across the projects.
	QuotaExceeded schemas.QuotaExceeded
	// Projects is how many projects were considered.
	Projects int
}

func (e *ExhaustedError) Error() string {
	if e.RetryAt.IsZero() {
		return fmt.Sprintf("no key available for %s: %s (%d projects)", e.Model, e.Reason, e.Projects)
	}
	return fmt.Sprintf("no key available for %s: %s until %s (%d projects)", e.Model, e.Reason, e.RetryAt.UTC().Format(time.RFC3339), e.Projects)
}

// exhaustion collects why projects were passed over.
type exhaustion struct {
	reason  string
	until   time.Time
	qe      schemas.QuotaExceeded
	n       int
	initial string
}

func reasonRank(r string) int {
	switch r {
	case ExhaustedQuota:
		return 3
	case ExhaustedCooldown:
		return 2
	case ExhaustedDisabled:
		return 1
	}
	return 0
}

func (x *exhaustion) add(status string, until time.Time) {
	x.n++
	reason := ExhaustedDisabled
	switch status {
	case statusRPM:
		reason, x.qe.RPM = ExhaustedQuota, true
	case statusTPM:
		reason, x.qe.TPM = ExhaustedQuota, true
	case statusRPD:
		reason, x.qe.RPD = ExhaustedQuota, true
	case statusCooldown:
		reason = ExhaustedCooldown
	}
	better := false
	switch {
	case x.reason == "":
		better = true
	case !until.IsZero() && (x.until.IsZero() || until.Before(x.until)):
		better = true
	case until.Equal(x.until) && reasonRank(reason) > reasonRank(x.reason):
		better = true
	}
	if better {
		x.reason, x.until = reason, until
	}
}

func (x *exhaustion) err(model string) *ExhaustedError {
	r := x.reason
	if r == "" {
		r = x.initial
	}
	return &ExhaustedError{Reason: r, RetryAt: x.until, Model: model, QuotaExceeded: x.qe, Projects: x.n}
}

// Select picks a key for one attempt. It ranks the candidate projects from the cached
// view by the strategy, passes over those the view knows to be unusable, and reserves
// quota on the first that the reservation script admits: one Valkey round trip in the
// usual case. When Valkey is unreachable it grants a Local lease within the local
// view's limits. It returns *ExhaustedError when no key can serve the request.
func (p *Pool) Select(ctx context.Context, req SelectRequest) (*Lease, error) {
	now := p.opts.Now()
	model := NormalizeModel(req.Model)
	if err := ValidateModel(model); err != nil {
		p.metrics.selections.WithLabelValues(resultInvalid).Inc()
		return nil, fmt.Errorf("select key: %w", err)
	}
	strategy := req.Strategy
	if strategy == "" {
		strategy = p.opts.Strategy
	} else if !strategy.valid() {
		p.metrics.selections.WithLabelValues(resultInvalid).Inc()
		return nil, fmt.Errorf("select key: strategy %q unknown", strategy)
	}
	if req.EstimatedTokens < 0 {
		req.EstimatedTokens = 0
	}
	set := p.set.Load()
	pool := set.keys
	if req.Subset != nil {
		pool = req.Subset
	}

	epoch := p.epoch.Load()
	degraded := p.degraded.Load()
	w := p.windowOf(now)
	minute, day := w.minute, w.day
	cands, x := p.candidates(pool, model, req, now, minute, day, epoch, degraded)
	if len(cands) == 0 {
		p.metrics.selections.WithLabelValues(x.initial).Inc()
		return nil, x.err(model)
	}
	p.noteModel(model, now)
	p.order(strategy, cands)

	for _, c := range cands {
		if c.blocked != "" {
			p.metrics.rejections.WithLabelValues(c.blocked, "view").Inc()
			x.add(c.blocked, c.blockedUntil)
			continue
		}
		p.orderKeys(strategy, c, p.keyHealth)
		if !p.degraded.Load() {
			lease, status, until, err := p.reserve(ctx, c, model, req.EstimatedTokens)
			if err == nil {
				if lease != nil {
					p.metrics.selections.WithLabelValues(resultOK).Inc()
					return lease, nil
				}
				p.metrics.rejections.WithLabelValues(status, "valkey").Inc()
				x.add(status, until)
				continue
			}
			if ctx.Err() != nil {
				// The caller gave up; that says nothing about Valkey.
				return nil, fmt.Errorf("select key: %w", ctx.Err())
			}
			p.metrics.valkeyErrors.WithLabelValues("reserve").Inc()
			p.setDegraded(err)
			// The failed call may have reserved in Valkey: the local view counts it as
			// admitted, so that fail-open never admits on headroom that call took.
			c.state.mu.Lock()
			c.state.addOff(p.epoch.Load(), minute, day, req.EstimatedTokens)
			c.state.mu.Unlock()
		}
		lease, status, until := p.admitLocal(c, model, req.EstimatedTokens, now)
		if lease != nil {
			p.metrics.selections.WithLabelValues(resultLocal).Inc()
			p.metrics.fallback.Inc()
			return lease, nil
		}
		p.metrics.rejections.WithLabelValues(status, "local").Inc()
		x.add(status, until)
	}
	e := x.err(model)
	p.metrics.selections.WithLabelValues(e.Reason).Inc()
	return nil, e
}

// candidates groups the keys that may serve model by project and evaluates each
// project against the view.
func (p *Pool) candidates(pool []*Key, model string, req SelectRequest, now time.Time, minute int64, day string, epoch uint64, degraded bool) ([]*candidate, *exhaustion) {
	x := &exhaustion{initial: ExhaustedNoKeys}
	var cands []*candidate
	byProject := map[string]*candidate{}
	allowed := 0
	for _, k := range pool {
		if !k.Allows(model) {
			continue
		}
		allowed++
		if slices.Contains(req.Exclude, k.hash) {
			continue
		}
		c := byProject[k.project.id]
		if c == nil {
			c = &candidate{project: k.project, limits: k.project.limits.get(model)}
			byProject[k.project.id] = c
			cands = append(cands, c)
		}
		c.keys = append(c.keys, k)
	}
	if allowed == 0 && len(pool) > 0 {
		x.initial = ExhaustedModelNotAllowed
	}
	for _, c := range cands {
		p.evaluate(c, model, req.EstimatedTokens, now, minute, day, epoch, degraded)
	}
	return cands, x
}

// evaluate fills in what the view knows of a candidate project: its usable keys, its
// headroom and whether it is known to be unusable.
func (p *Pool) evaluate(c *candidate, model string, tokens int64, now time.Time, minute int64, day string, epoch uint64, degraded bool) {
	usable := c.keys[:0:0]
	var openUntil time.Time
	for _, k := range c.keys {
		ks := p.view.key(k.hash)
		ks.mu.Lock()
		dis := ks.disabled(now, degraded)
		until, open := ks.openUntil(now, p.opts.MaxFails, p.opts.FailWindow)
		ks.mu.Unlock()
		switch {
		case dis != "":
		case open:
			if openUntil.IsZero() || until.Before(openUntil) {
				openUntil = until
			}
		default:
			usable = append(usable, k)
		}
	}
	allKeys := c.keys
	c.keys = usable

	s := p.view.pair(c.project.id, model)
	c.state = s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastUsed = now
	if !c.project.isConfigured() {
		s.keys = s.keys[:0]
		for _, k := range allKeys {
			s.keys = append(s.keys, k.hash)
		}
	}
	if len(usable) == 0 {
		c.blocked, c.blockedUntil = statusDisabled, openUntil
		return
	}
	if until, _, ok := s.cooling(now); ok {
		c.blocked, c.blockedUntil = statusCooldown, until
		return
	}
	req, tok, dayReq := s.usage(minute, day, epoch)
	if status, until := exceeds(c.limits, req, tok, dayReq, tokens, now); status != "" {
		c.blocked, c.blockedUntil = status, until
		return
	}
	c.headroom = headroom(c.limits, req, tok, dayReq)
}

func (pr *project) isConfigured() bool { return len(pr.keys) > 0 }

// exceeds applies the reservation script's rule to the view's numbers.
func exceeds(l Limits, req, tok, dayReq, tokens int64, now time.Time) (string, time.Time) {
	switch {
	case l.RPD > 0 && dayReq+1 > l.RPD:
		return statusRPD, schemas.NextPacificMidnight(now)
	case l.RPM > 0 && req+1 > l.RPM:
		return statusRPM, schemas.MinuteEnd(now)
	case l.TPM > 0 && tok+tokens > l.TPM:
		return statusTPM, schemas.MinuteEnd(now)
	}
	return "", time.Time{}
}

func (p *Pool) keyHealth(k *Key) (int, float64, int64) {
	ks := p.view.key(k.hash)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return len(ks.fails), ks.ewmaMs, ks.ewmaN
}

// applyReply stores the reply of the script call numbered seq in the view.
func (p *Pool) applyReply(s *pairState, hashes []string, r *scriptReply, now time.Time, w window, seq uint64) {
	s.mu.Lock()
	s.apply(now, r, w.minute, w.day, seq)
	s.mu.Unlock()
	for i, kf := range r.keys {
		if i >= len(hashes) {
			break
		}
		ks := p.view.key(hashes[i])
		ks.mu.Lock()
		ks.remoteDisabled = kf.blacklisted
		ks.remoteOpenUntil = kf.openUntil
		if kf.blacklisted != nil {
			// Valkey has the entry now; the local mark has done its job.
			ks.localDisabled = ""
		}
		ks.mu.Unlock()
	}
}

// admitLocal grants a lease without Valkey when the local view has headroom: Valkey's
// last numbers for the pair plus this instance's admissions since the outage began.
func (p *Pool) admitLocal(c *candidate, model string, tokens int64, now time.Time) (*Lease, string, time.Time) {
	if len(c.keys) == 0 {
		return nil, statusDisabled, time.Time{}
	}
	epoch := p.epoch.Load()
	w := p.windowOf(now)
	minute, day := w.minute, w.day
	s := c.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if until, _, ok := s.cooling(now); ok {
		return nil, statusCooldown, until
	}
	req, tok, dayReq := s.usage(minute, day, epoch)
	// Calls still awaiting their reply may be admitted: count them.
	req, tok, dayReq = req+s.inflight, tok+s.inflightTok, dayReq+s.inflight
	if status, until := exceeds(c.limits, req, tok, dayReq, tokens, now); status != "" {
		return nil, status, until
	}
	s.addOff(epoch, minute, day, tokens)
	id := p.newReservationID()
	p.addLocal(id, localLease{project: c.project.id, model: model, minute: minute, tokens: tokens,
		expiresMs: schemas.MinuteCounterExpiry(now).UnixMilli()})
	return &Lease{Key: c.keys[0], Model: model, Reservation: id, Local: true, EstimatedTokens: tokens, At: now, epoch: epoch}, statusOK, time.Time{}
}
