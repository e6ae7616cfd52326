package keypool

import (
	"context"
	"fmt"
	"time"
)

// Run refreshes the view every RefreshInterval until ctx ends. While the pool is
// degraded, the refresh is also the probe that notices Valkey is back.
func (p *Pool) Run(ctx context.Context) error {
	t := time.NewTicker(p.opts.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := p.Refresh(ctx); err != nil && ctx.Err() == nil {
				p.log.Debug("refresh key pool view", "err", err)
			}
		}
	}
}

type refreshItem struct {
	state   *pairState
	project string
	hashes  []string
}

// Refresh reads the state of every active (project, model) pair — the configured
// projects for each model selected within ActiveFor, and the pass-through clients'
// pairs used within ActiveFor — with one DoMulti of read-only runs of the reservation
// script, and stores it in the view. It also retries the deletion of orphaned
// reservations. A success ends a degraded period; a failure starts one.
func (p *Pool) Refresh(parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, p.opts.RefreshTimeout)
	defer cancel()
	now := p.opts.Now()
	set := p.set.Load()
	models := p.activeModels(now)
	w := p.windowOf(now)

	var items []refreshItem
	var calls []scriptCall
	add := func(pr *project, model string, hashes []string) {
		s := p.view.pair(pr.id, model)
		items = append(items, refreshItem{state: s, project: pr.id, hashes: hashes})
		calls = append(calls, buildScriptCall(p.keys, w, scriptParams{
			project: pr.id, model: model, keyHashes: hashes, now: now,
			limits: pr.limits.get(model), maxFails: p.opts.MaxFails, failWindow: p.opts.FailWindow,
		}))
	}
	configured := map[pairKey]bool{}
	for _, pr := range set.projects {
		for _, m := range models {
			var hashes []string
			for _, k := range pr.keys {
				if k.Allows(m) {
					hashes = append(hashes, k.hash)
				}
			}
			if len(hashes) > 0 {
				configured[pairKey{pr.id, m}] = true
				add(pr, m, hashes)
			}
		}
	}
	cutoff := now.Add(-p.opts.ActiveFor)
	for pk, s := range p.view.pairsSnapshot() {
		if configured[pk] {
			continue
		}
		s.mu.Lock()
		active := !s.lastUsed.Before(cutoff) && len(s.keys) > 0
		hashes := append([]string(nil), s.keys...)
		s.mu.Unlock()
		if active {
			add(&project{id: pk.project, limits: set.passthroughLimits}, pk.model, hashes)
		}
	}
	p.view.forget(cutoff, func(pk pairKey) bool { return configured[pk] }, func(h string) bool { return set.byHash[h] != nil })

	start := time.Now()
	seq := p.callSeq.Add(1)
	var err error
	if len(calls) == 0 {
		err = p.client.Do(ctx, p.client.B().Ping().Build()).Error()
	} else {
		res := p.evalMulti(ctx, calls)
		for i, r := range res {
			msg, e := r.ToMessage()
			if e != nil {
				err = e
				continue
			}
			reply, e := parseScriptReply(msg, now)
			if e != nil {
				err = e
				continue
			}
			p.applyReply(items[i].state, items[i].hashes, reply, now, w, seq)
		}
	}
	p.metrics.scriptSeconds.WithLabelValues("refresh").Observe(time.Since(start).Seconds())
	p.metrics.refreshedPairs.Set(float64(len(calls)))
	if err != nil {
		p.metrics.valkeyErrors.WithLabelValues("refresh").Inc()
		if parent.Err() == nil {
			p.setDegraded(err)
		}
		return fmt.Errorf("refresh %d pairs: %w", len(calls), err)
	}
	if p.degraded.Load() {
		// Valkey answers again: it must hold the outage's local admissions before
		// reservations rely on it alone.
		if err := p.handOver(ctx, now); err != nil {
			p.metrics.valkeyErrors.WithLabelValues("refresh").Inc()
			return err
		}
	}
	p.clearDegraded()
	// Leases granted by selections that saw the pool still degraded.
	if err := p.handOver(ctx, now); err != nil {
		p.log.Warn("hand local admissions over to valkey", "err", err)
	}
	return p.flushOrphans(ctx)
}

// flushOrphans deletes the reservations that could not be deleted before.
func (p *Pool) flushOrphans(ctx context.Context) error {
	p.orphansMu.Lock()
	orphans := p.orphans
	p.orphans = nil
	p.orphansMu.Unlock()
	if len(orphans) == 0 {
		return nil
	}
	failed, _ := p.settle(ctx, orphans)
	for _, o := range failed {
		p.addOrphan(o)
	}
	if len(failed) > 0 {
		return fmt.Errorf("delete %d orphaned reservations", len(failed))
	}
	return nil
}
