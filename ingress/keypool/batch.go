package keypool

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/geminicodeapi/gca/schemas"
)

// Reservations are batched per pair (group commit). A request that needs quota on a
// (project, model) pair joins the pair's queue; one goroutine per busy pair runs the
// reservation script for everything queued, then for what queued meanwhile, and so on.
// An idle pair costs what it did before batching: one call for one request, no wait.
// Under load the requests that arrive during one round trip share the next: the
// pair's numbers are read once and every reservation written with one HSET, so
// Valkey's work per request falls with the load instead of queueing behind it.
//
// Admission stays exact: the script admits the batch's reservations one after the
// other against the numbers with the earlier ones included, as separate calls would.

// maxBatch bounds the reservations of one script call.
const maxBatch = 128

// waiter is one request's reservation in the queue of its pair.
type waiter struct {
	id      string
	tokens  int64
	project string
	model   string
	limits  Limits
	keys    []*Key // usable keys in this request's order of preference

	// claimed is set by whichever side gives up on the other first: the request when
	// its context ends, or the batch when it delivers the result. A reservation the
	// script made for a request that has left is settled at once.
	claimed atomic.Bool
	done    chan reserveResult
}

// reserveResult is what a batch tells one waiter.
type reserveResult struct {
	lease  *Lease
	status string
	until  time.Time
	err    error
}

// reserve runs the reservation script for one request on one project, in a batch with
// whatever else waits for the pair. It returns a lease, or the status and retry time of
// a refusal, or the error of an unreachable Valkey.
func (p *Pool) reserve(ctx context.Context, c *candidate, model string, tokens int64) (*Lease, string, time.Time, error) {
	w := &waiter{
		id: p.newReservationID(), tokens: tokens, project: c.project.id, model: model,
		limits: c.limits, keys: c.keys, done: make(chan reserveResult, 1),
	}
	s := c.state
	s.mu.Lock()
	s.inflight++
	s.inflightTok += tokens
	s.waiting = append(s.waiting, w)
	start := !s.running
	s.running = true
	s.mu.Unlock()
	if start {
		go p.runBatches(s)
	}
	select {
	case r := <-w.done:
		return r.lease, r.status, r.until, r.err
	case <-ctx.Done():
		if w.claimed.CompareAndSwap(false, true) {
			return nil, "", time.Time{}, fmt.Errorf("reserve quota of %s/%s: %w", c.project.id, model, ctx.Err())
		}
		r := <-w.done
		return r.lease, r.status, r.until, r.err
	}
}

// runBatches makes script calls for the pair until nothing waits.
func (p *Pool) runBatches(s *pairState) {
	for {
		s.mu.Lock()
		batch := s.waiting
		if len(batch) > maxBatch {
			batch = batch[:maxBatch:maxBatch]
			s.waiting = append([]*waiter(nil), s.waiting[maxBatch:]...)
		} else {
			s.waiting = nil
		}
		if len(batch) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		p.reserveBatch(s, batch)
	}
}

// reserveBatch runs one script call for the batch and tells each waiter its result.
func (p *Pool) reserveBatch(s *pairState, batch []*waiter) {
	first := batch[0]
	now := p.opts.Now()
	w := p.windowOf(now)
	// The keys of the call: every waiter's, in the order they first appear. A single
	// reservation keeps its own order, so the script stops at its first usable key.
	var hashes []string
	index := map[string]int{}
	args := make([]reservationArg, len(batch))
	for i, wt := range batch {
		args[i] = reservationArg{id: wt.id, tokens: wt.tokens}
		for _, k := range wt.keys {
			if _, ok := index[k.hash]; !ok {
				index[k.hash] = len(hashes)
				hashes = append(hashes, k.hash)
			}
		}
	}
	call := buildScriptCall(p.keys, w, scriptParams{
		project: first.project, model: first.model, keyHashes: hashes, now: now,
		limits: first.limits, reservations: args, maxFails: p.opts.MaxFails, failWindow: p.opts.FailWindow,
	})
	seq := p.callSeq.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.Timeout)
	start := time.Now()
	res := p.script.Exec(ctx, p.client, call.keys, call.args)
	cancel()
	p.metrics.scriptSeconds.WithLabelValues("reserve").Observe(time.Since(start).Seconds())
	p.metrics.batchSize.Observe(float64(len(batch)))
	msg, err := res.ToMessage()
	var r *scriptReply
	if err == nil {
		r, err = parseScriptReply(msg, now)
	}
	if err == nil && r.status == statusOK && len(r.items) != len(batch) {
		err = fmt.Errorf("reply has %d results for %d reservations", len(r.items), len(batch))
	}
	s.mu.Lock()
	for _, wt := range batch {
		s.inflight--
		s.inflightTok -= wt.tokens
	}
	s.mu.Unlock()
	if err != nil {
		// The script may have run and its reply been lost. Delete the reservations once
		// Valkey answers again, and until then count them as admitted (see Select).
		for _, wt := range batch {
			p.addOrphan(orphan{project: wt.project, model: wt.model, id: wt.id})
			p.deliver(wt, reserveResult{err: fmt.Errorf("reserve quota of %s/%s: %w", wt.project, wt.model, err)}, false)
		}
		return
	}
	p.applyReply(s, hashes, r, now, w, seq)
	for i, wt := range batch {
		res, reserved := p.outcome(wt, r, i, index, now)
		p.deliver(wt, res, reserved)
	}
}

// outcome is what the reply means for the i-th waiter of the batch; reserved says the
// script wrote its reservation.
func (p *Pool) outcome(wt *waiter, r *scriptReply, i int, index map[string]int, now time.Time) (reserveResult, bool) {
	switch r.status {
	case statusOK:
	case statusCooldown:
		return reserveResult{status: statusCooldown, until: r.cooldownUntil}, false
	case statusRPM, statusTPM:
		return reserveResult{status: r.status, until: schemas.MinuteEnd(now)}, false
	case statusRPD:
		return reserveResult{status: r.status, until: schemas.NextPacificMidnight(now)}, false
	default:
		return disabledResult(r, wt.keys, index), false
	}
	switch r.items[i] {
	case 'o':
	case 'd':
		return reserveResult{status: statusRPD, until: schemas.NextPacificMidnight(now)}, false
	case 'm':
		return reserveResult{status: statusRPM, until: schemas.MinuteEnd(now)}, false
	case 't':
		return reserveResult{status: statusTPM, until: schemas.MinuteEnd(now)}, false
	default:
		return reserveResult{err: fmt.Errorf("reserve quota of %s/%s: reply result %q unknown", wt.project, wt.model, r.items[i])}, true
	}
	for _, k := range wt.keys {
		if j := index[k.hash]; j < len(r.keys) && r.keys[j].usable {
			return reserveResult{lease: &Lease{
				Key: k, Model: wt.model, Reservation: wt.id,
				EstimatedTokens: wt.tokens, At: now, epoch: p.epoch.Load(),
			}, status: statusOK}, true
		}
	}
	// Reserved, but every key this request may use is unusable (another request of
	// the batch had a usable one): hand the reservation back.
	res := disabledResult(r, wt.keys, index)
	return res, true
}

// disabledResult refuses a request whose keys are all blacklisted or circuit-open,
// until the first circuit closes.
func disabledResult(r *scriptReply, keys []*Key, index map[string]int) reserveResult {
	var until time.Time
	for _, k := range keys {
		if j := index[k.hash]; j < len(r.keys) {
			if t := r.keys[j].openUntil; !t.IsZero() && (until.IsZero() || t.Before(until)) {
				until = t
			}
		}
	}
	return reserveResult{status: statusDisabled, until: until}
}

// deliver hands the result to the waiter, or, when the waiter has left, settles the
// reservation the script made for it.
func (p *Pool) deliver(wt *waiter, r reserveResult, reserved bool) {
	if wt.claimed.CompareAndSwap(false, true) {
		if reserved && r.lease == nil {
			p.settleLeft(wt)
		}
		wt.done <- r
		return
	}
	if reserved {
		p.settleLeft(wt)
	}
}

// settleLeft deletes a reservation nobody will use, or leaves it to the refresh.
func (p *Pool) settleLeft(wt *waiter) {
	o := orphan{project: wt.project, model: wt.model, id: wt.id}
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.Timeout)
	defer cancel()
	if failed, _ := p.settle(ctx, []orphan{o}); len(failed) > 0 {
		p.addOrphan(o)
	}
}
