package main

import (
	"context"
	"time"

	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

// revalidateModel is what disabled keys are probed with (countTokens spends no
// generation quota).
const revalidateModel = "gemini-2.5-flash"

// revalidateLoop re-probes disabled keys on a schedule and re-enables, by an event,
// those that work again (an operator fixed billing, an API was enabled again).
func (a *app) revalidateLoop(ctx context.Context) error {
	every := a.cfg.RevalidateEvery
	if every <= 0 {
		return nil
	}
	t := time.NewTimer(every / 10) // first pass soon after start
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		a.revalidate(ctx)
		t.Reset(every)
	}
}

func (a *app) revalidate(ctx context.Context) {
	disabled, err := a.pool.Disabled(ctx)
	if err != nil {
		a.log.Warn("list disabled keys", "err", err)
	}
	for _, d := range disabled {
		if d.Reason == schemas.ReasonOperator {
			// An operator's disable holds until an operator enables the key: a key
			// that works is not a reason to undo a decision made for other reasons.
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		f, err := a.up.CheckKey(pctx, d.Key.Secret().Reveal(), revalidateModel)
		cancel()
		if err != nil {
			a.log.Warn("revalidate key", "key_id", d.Key.Hash(), "err", err)
			continue
		}
		if f != gemini.FailureNone && f != gemini.FailureMinuteQuota && f != gemini.FailureDayQuota && f != gemini.FailureQuotaUnknown {
			continue // still refused (or the upstream is failing): stays disabled
		}
		id, err := schemas.NewEventID()
		if err != nil {
			continue
		}
		e := &schemas.KeyStateEvent{
			Type: schemas.TypeKeyState, V: schemas.KeyStateVersion, EventID: id, TimeMs: time.Now().UnixMilli(),
			Instance: a.cfg.Instance, Kind: schemas.KindEnable, KeyHash: d.Key.Hash(), Project: d.Key.Project(),
			Reason: schemas.ReasonRevalidated, Source: schemas.SourceRevalidation,
		}
		if err := a.pub.Publish(schemas.TopicKeyState, e); err != nil {
			a.log.Error("publish key re-enable", "key_id", d.Key.Hash(), "err", err)
			continue
		}
		a.pool.MarkEnabled(d.Key.Hash())
		a.log.Info("key works again: re-enabled", "key_id", d.Key.Hash(), "project", d.Key.Project())
	}
}
