package keypool

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/schemas"
)

// KeyInfo is what the config says of a key.
type KeyInfo struct {
	Hash    string   `json:"hash"`
	Name    string   `json:"name,omitempty"`
	Project string   `json:"project"`
	Tier    string   `json:"tier"`
	Models  []string `json:"models,omitempty"`
	Weight  int      `json:"weight"`
}

// Keys lists the configured keys, in config order.
func (p *Pool) Keys() []KeyInfo {
	set := p.set.Load()
	out := make([]KeyInfo, 0, len(set.keys))
	for _, k := range set.keys {
		out = append(out, keyInfo(k))
	}
	return out
}

// Key returns the configured key with the hash, or nil.
func (p *Pool) Key(hash string) *Key { return p.set.Load().byHash[hash] }

func keyInfo(k *Key) KeyInfo {
	return KeyInfo{Hash: k.hash, Name: k.name, Project: k.project.id, Tier: k.project.tier, Models: k.Models(), Weight: k.weight}
}

// KeyState is a key with its live state, for the admin API.
type KeyState struct {
	KeyInfo
	// Disabled is the key's blacklist entry in Valkey; nil when enabled.
	Disabled *schemas.BlacklistEntry `json:"disabled,omitempty"`
	// LocalDisabled is this instance's own mark (an invalid-key answer not yet
	// confirmed by Valkey).
	LocalDisabled string       `json:"local_disabled,omitempty"`
	Health        Health       `json:"health"`
	Quotas        []ModelQuota `json:"quotas"`
}

// Health is a key's health: the processors' record in Valkey and this instance's.
type Health struct {
	LastOK      time.Time `json:"last_ok,omitzero"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	FailureKind string    `json:"failure_kind,omitempty"`
	// Failures counts the failures since the last success within the fail window.
	Failures     int64   `json:"recent_failures"`
	LatencyAvgMs float64 `json:"latency_avg_ms"`
	// CircuitOpenUntil is set while the key is skipped for its failures.
	CircuitOpenUntil time.Time `json:"circuit_open_until,omitzero"`
	// LocalLatencyEWMAMs is this instance's moving average of the key's latency.
	LocalLatencyEWMAMs float64 `json:"local_latency_ewma_ms"`
}

// ModelQuota is the quota state of the key's project for one model.
type ModelQuota struct {
	Model  string `json:"model"`
	Limits Limits `json:"limits"`
	// Requests and Tokens are the current minute's, Day the current Pacific day's.
	Requests Window `json:"requests_minute"`
	Tokens   Window `json:"tokens_minute"`
	Day      Window `json:"requests_day"`
	// CooldownUntil is the end of the pair's cool-down, if cooling.
	CooldownUntil  time.Time `json:"cooldown_until,omitzero"`
	CooldownReason string    `json:"cooldown_reason,omitempty"`
}

// Window is the use of one quota in its current window.
type Window struct {
	Counted int64 `json:"counted"`
	Pending int64 `json:"pending"`
	// Left is limit − counted − pending, never below 0; -1 when unlimited.
	Left int64 `json:"left"`
}

func usageWindow(limit, counted, pending int64) Window {
	left := int64(-1)
	if limit > 0 {
		left = max(limit-counted-pending, 0)
	}
	return Window{Counted: counted, Pending: pending, Left: left}
}

// KeyStates reads the live state of every configured key from Valkey in two round
// trips: the quota state of each (project, model) pair, and each key's health and
// blacklist entry. The models of a key are its allow-list, or else the models of its
// tier's limit table and those selected recently.
func (p *Pool) KeyStates(ctx context.Context) ([]KeyState, error) {
	now := p.opts.Now()
	set := p.set.Load()
	active := p.activeModels(now)

	type pairRef struct{ project, model string }
	var calls []scriptCall
	index := map[pairRef]int{}
	modelsOf := func(k *Key) []string {
		if k.models != nil {
			return k.models
		}
		var ms []string
		for m := range k.project.limits {
			if m != AnyModel {
				ms = append(ms, m)
			}
		}
		for _, m := range active {
			if !slices.Contains(ms, m) {
				ms = append(ms, m)
			}
		}
		sort.Strings(ms)
		return ms
	}
	for _, k := range set.keys {
		for _, m := range modelsOf(k) {
			ref := pairRef{k.project.id, m}
			if _, ok := index[ref]; ok {
				continue
			}
			index[ref] = len(calls)
			calls = append(calls, buildScriptCall(p.keys, p.windowOf(now), scriptParams{
				project: k.project.id, model: m, now: now, limits: k.project.limits.get(m),
				maxFails: p.opts.MaxFails, failWindow: p.opts.FailWindow,
			}))
		}
	}
	replies := make([]*scriptReply, len(calls))
	if len(calls) > 0 {
		for i, r := range p.evalMulti(ctx, calls) {
			msg, err := r.ToMessage()
			if err != nil {
				return nil, fmt.Errorf("read quota state: %w", err)
			}
			if replies[i], err = parseScriptReply(msg, now); err != nil {
				return nil, err
			}
		}
	}

	cmds := make(valkey.Commands, 0, 3*len(set.keys))
	for _, k := range set.keys {
		cmds = append(cmds,
			p.client.B().Get().Key(p.keys.Blacklist(k.project.id, k.hash)).Build(),
			p.client.B().Hgetall().Key(p.keys.Health(k.project.id, k.hash)).Build(),
			p.client.B().Zcount().Key(p.keys.Fails(k.project.id, k.hash)).Min(strconv.FormatInt(now.Add(-p.opts.FailWindow).UnixMilli(), 10)).Max("+inf").Build(),
		)
	}
	var res []valkey.ValkeyResult
	if len(cmds) > 0 {
		res = p.client.DoMulti(ctx, cmds...)
	}

	out := make([]KeyState, 0, len(set.keys))
	for i, k := range set.keys {
		st := KeyState{KeyInfo: keyInfo(k)}
		if s, err := res[3*i].ToString(); err == nil {
			e := &schemas.BlacklistEntry{}
			if json.Unmarshal([]byte(s), e) != nil {
				e.Reason = "disabled"
			}
			st.Disabled = e
		} else if !valkey.IsValkeyNil(err) {
			return nil, fmt.Errorf("read blacklist of %s: %w", k.hash, err)
		}
		h, err := res[3*i+1].AsStrMap()
		if err != nil && !valkey.IsValkeyNil(err) {
			return nil, fmt.Errorf("read health of %s: %w", k.hash, err)
		}
		st.Health = healthFrom(h)
		if n, err := res[3*i+2].AsInt64(); err == nil {
			st.Health.Failures = n
		}
		ks := p.view.key(k.hash)
		ks.mu.Lock()
		st.LocalDisabled = ks.disabled(now, p.Degraded())
		if st.Disabled != nil && st.LocalDisabled == st.Disabled.Reason {
			st.LocalDisabled = ""
		}
		if u, open := ks.openUntil(now, p.opts.MaxFails, p.opts.FailWindow); open {
			st.Health.CircuitOpenUntil = u
		}
		st.Health.LocalLatencyEWMAMs = ks.ewmaMs
		ks.mu.Unlock()
		for _, m := range modelsOf(k) {
			r := replies[index[pairRef{k.project.id, m}]]
			l := k.project.limits.get(m)
			q := ModelQuota{
				Model:    m,
				Limits:   l,
				Requests: usageWindow(l.RPM, r.rpm, r.pendReq),
				Tokens:   usageWindow(l.TPM, r.tpm, r.pendTok),
				Day:      usageWindow(l.RPD, r.rpd, r.pendDay),
			}
			if r.cooldownUntil.After(now) {
				q.CooldownUntil, q.CooldownReason = r.cooldownUntil, r.cooldownReason
			}
			st.Quotas = append(st.Quotas, q)
		}
		out = append(out, st)
	}
	return out, nil
}

func healthFrom(h map[string]string) Health {
	var out Health
	ms := func(f string) time.Time {
		if v, err := strconv.ParseInt(h[f], 10, 64); err == nil && v > 0 {
			return time.UnixMilli(v)
		}
		return time.Time{}
	}
	out.LastOK = ms(schemas.HealthOKMs)
	out.LastFailure = ms(schemas.HealthFailMs)
	out.FailureKind = h[schemas.HealthFailKind]
	n, _ := strconv.ParseFloat(h[schemas.HealthLatN], 64)
	sum, _ := strconv.ParseFloat(h[schemas.HealthLatSumMs], 64)
	if n > 0 {
		out.LatencyAvgMs = sum / n
	}
	return out
}

// DisabledKey is a configured key that may not be used until revalidated.
type DisabledKey struct {
	Key    *Key
	Reason string
	// Since is when it was disabled (the blacklist entry's timestamp, or when this
	// instance saw the failure).
	Since time.Time
	// Local is set when only this instance knows (Valkey has no entry yet).
	Local bool
}

// Disabled lists the configured keys that are disabled — in Valkey's blacklist or by
// this instance's own outcomes — for the revalidation schedule. It reads Valkey in one
// round trip; when Valkey is unreachable it answers from the view and returns the
// error too.
func (p *Pool) Disabled(ctx context.Context) ([]DisabledKey, error) {
	now := p.opts.Now()
	set := p.set.Load()
	var res []valkey.ValkeyResult
	if len(set.keys) > 0 {
		cmds := make(valkey.Commands, 0, len(set.keys))
		for _, k := range set.keys {
			cmds = append(cmds, p.client.B().Get().Key(p.keys.Blacklist(k.project.id, k.hash)).Build())
		}
		tctx, cancel := context.WithTimeout(ctx, p.opts.RefreshTimeout)
		res = p.client.DoMulti(tctx, cmds...)
		cancel()
	}
	var out []DisabledKey
	var firstErr error
	for i, k := range set.keys {
		ks := p.view.key(k.hash)
		s, err := res[i].ToString()
		switch {
		case err == nil:
			e := &schemas.BlacklistEntry{Reason: "disabled"}
			_ = json.Unmarshal([]byte(s), e)
			ks.mu.Lock()
			ks.remoteDisabled = e
			ks.mu.Unlock()
			out = append(out, DisabledKey{Key: k, Reason: e.Reason, Since: time.UnixMilli(e.Timestamp)})
			continue
		case valkey.IsValkeyNil(err):
			ks.mu.Lock()
			ks.remoteDisabled = nil
			ks.mu.Unlock()
		default:
			if firstErr == nil {
				firstErr = fmt.Errorf("read blacklist: %w", err)
			}
		}
		ks.mu.Lock()
		reason, since, remote := ks.disabled(now, p.Degraded()), ks.localDisabledAt, ks.remoteDisabled != nil
		ks.mu.Unlock()
		if reason != "" {
			out = append(out, DisabledKey{Key: k, Reason: reason, Since: since, Local: !remote})
		}
	}
	return out, firstErr
}
