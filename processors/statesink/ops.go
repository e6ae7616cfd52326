package statesink

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

// This file holds the rules: which Valkey changes an event asks for. They exist once.
// The writer encodes the ops below into Lua script arguments (script.go), and Expected
// applies the same ops to an in-memory model of Valkey (model.go); the scripts and the
// model only know how to apply an op, never why.

// outcome is what an attempt says about its key's health.
type outcome byte

const (
	// outcomeNone: neither a success nor the key's failure (a 429 belongs to the
	// project's quota, a 4xx to the request).
	outcomeNone outcome = 'n'
	// outcomeOK: the key answered 2xx.
	outcomeOK outcome = 'o'
	// outcomeFail: the key failed in a way that says something about its health.
	outcomeFail outcome = 'f'
)

// Failure names (schemas.Attempt.Failure) that count against a key's health. Quota
// failures are the project's state (cool-downs) and client failures the request's, so
// neither makes a key unhealthy.
const (
	failTimeout = "timeout"
	failNetwork = "network"
)

// classify returns what the attempt says about its key's health.
func classify(a *schemas.Attempt) outcome {
	switch a.Failure {
	case "":
		if a.Status >= 200 && a.Status < 300 {
			return outcomeOK
		}
		return outcomeNone
	case gemini.FailureUpstream.String(), gemini.FailureKeyInvalid.String(),
		gemini.FailureForbidden.String(), failTimeout, failNetwork:
		return outcomeFail
	}
	return outcomeNone
}

// counterOp adds N to a counter that expires at ExpireAtMs.
type counterOp struct {
	Key        string
	N          int64
	ExpireAtMs int64
}

// healthOp is one attempt's contribution to its key's health. Applying health ops in any
// order yields the same state:
//   - ok_ms is the maximum success time;
//   - the fails ZSET holds the failures strictly after ok_ms (a success at t removes
//     failures at t or before; a failure at t or before ok_ms is not added);
//   - fail_ms / fail_kind are the latest failure ever seen (ties: the greater kind), so
//     "fail_ms > ok_ms" says the key's last word was a failure;
//   - lat_n / lat_sum_ms are sums;
//   - each key expires at the maximum of its contributions' expiries.
type healthOp struct {
	Health, Fails string
	TsMs          int64
	Outcome       outcome
	FailKind      string
	// Member identifies the failure in the fails ZSET: "<event_id>#<attempt index>".
	Member string
	// Latency is false for a health reset (KindEnable), which is no attempt.
	Latency    bool
	LatencyMs  int64
	ExpireAtMs int64
}

// projectOps is what one request event does to one project's state, guarded by the
// applied mark of (project, event).
type projectOps struct {
	Project        string
	EventID        string
	Mark           string
	MarkExpireAtMs int64
	Counters       []counterOp
	Health         []healthOp
	// Pending are the ingress's reservations this event settles: deleted in the same
	// script that counts the attempts, so a request is never seen twice (pending and
	// counted) nor not at all. They are not derived state: Expected ignores them.
	Pending []pendingOp
}

// pendingOp deletes one reservation (HDEL Key Field).
type pendingOp struct {
	Key, Field string
}

// rules turns request events into ops for one clock reading. It memoizes what repeats
// across the events of a batch (project validation, the Pacific day of a minute, key
// names), which is most of the cost of building ops; it is not safe for concurrent use.
type rules struct {
	keys     schemas.Keys
	nowMs    int64
	projects map[string]bool
	minutes  map[int64]minuteInfo
	counters map[counterID]counterKeys
	health   map[[2]string][2]string
}

type minuteInfo struct {
	day       string
	minuteExp int64
	dayExp    int64
}

type counterID struct {
	project, model string
	minute         int64
}

type counterKeys struct{ rpm, tpm, rpd string }

func newRules(keys schemas.Keys, now time.Time) *rules {
	return &rules{
		keys:     keys,
		nowMs:    now.UnixMilli(),
		projects: map[string]bool{},
		minutes:  map[int64]minuteInfo{},
		counters: map[counterID]counterKeys{},
		health:   map[[2]string][2]string{},
	}
}

// requestOps is rules.requestOps for a single event.
func requestOps(keys schemas.Keys, e *schemas.RequestEvent, now time.Time) ([]projectOps, int) {
	return newRules(keys, now).requestOps(e)
}

// requestOps turns a request event into the ops of each project it touches, in the order
// the projects first appear among the attempts. Contributions whose keys would already
// have expired at now are left out, so a replay of old events writes nothing stale; a
// project left with nothing gets no ops and no mark. Attempts whose project cannot be
// part of a key are counted in invalid and ignored.
func (r *rules) requestOps(e *schemas.RequestEvent) (out []projectOps, invalid int) {
	for i := range e.Attempts {
		a := &e.Attempts[i]
		if !r.validProject(a.Project) {
			invalid++
			continue
		}
		j := 0
		for j < len(out) && out[j].Project != a.Project {
			j++
		}
		if j == len(out) {
			out = append(out, projectOps{Project: a.Project, EventID: e.EventID,
				Counters: make([]counterOp, 0, 3), Health: make([]healthOp, 0, 1)})
		}
		p := &out[j]
		m := schemas.MinuteOf(time.UnixMilli(a.TimeMs))
		info := r.minute(m)
		if a.Counted {
			ck := r.counterKeys(a.Project, e.Model, m, info)
			if info.minuteExp > r.nowMs {
				p.addCounter(ck.rpm, 1, info.minuteExp)
				if a.InputTokens > 0 {
					p.addCounter(ck.tpm, a.InputTokens, info.minuteExp)
				}
			}
			if info.dayExp > r.nowMs {
				p.addCounter(ck.rpd, 1, info.dayExp)
			}
		}
		if a.Reservation != "" {
			p.Pending = append(p.Pending, pendingOp{Key: r.keys.Pending(a.Project, e.Model), Field: a.Reservation})
		}
		if exp := a.TimeMs + schemas.HealthTTL.Milliseconds(); exp > r.nowMs {
			hk := r.healthKeys(a.Project, a.KeyHash)
			h := healthOp{
				Health:     hk[0],
				Fails:      hk[1],
				TsMs:       a.TimeMs,
				Outcome:    classify(a),
				Latency:    true,
				LatencyMs:  a.LatencyMs,
				ExpireAtMs: exp,
			}
			if h.Outcome == outcomeFail {
				h.FailKind = a.Failure
				h.Member = e.EventID + "#" + strconv.Itoa(i)
			}
			p.Health = append(p.Health, h)
			p.MarkExpireAtMs = max(p.MarkExpireAtMs, exp)
		}
	}
	kept := out[:0]
	for _, p := range out {
		if len(p.Counters) == 0 && len(p.Health) == 0 {
			continue
		}
		if len(p.Counters) == 0 {
			p.Counters = nil
		}
		p.Mark = r.keys.Applied(p.Project, e.EventID)
		kept = append(kept, p)
	}
	return kept, invalid
}

func (r *rules) validProject(p string) bool {
	v, ok := r.projects[p]
	if !ok {
		v = schemas.ValidateProject(p) == nil
		r.projects[p] = v
	}
	return v
}

// minute returns the windows of a Unix minute: the Pacific day it belongs to and when
// its minute and day counters expire. Pacific midnight falls on a minute boundary, so
// the minute's start stands for every instant in it.
func (r *rules) minute(m int64) minuteInfo {
	info, ok := r.minutes[m]
	if !ok {
		t := time.Unix(m*60, 0)
		info = minuteInfo{
			day:       schemas.PacificDay(t),
			minuteExp: schemas.MinuteCounterExpiry(t).UnixMilli(),
			dayExp:    schemas.DayCounterExpiry(t).UnixMilli(),
		}
		r.minutes[m] = info
	}
	return info
}

func (r *rules) counterKeys(project, model string, m int64, info minuteInfo) counterKeys {
	id := counterID{project, model, m}
	ck, ok := r.counters[id]
	if !ok {
		ck = counterKeys{
			rpm: r.keys.MinuteRequests(project, model, m),
			tpm: r.keys.MinuteTokens(project, model, m),
			rpd: r.keys.DayRequests(project, model, info.day),
		}
		r.counters[id] = ck
	}
	return ck
}

func (r *rules) healthKeys(project, keyHash string) [2]string {
	id := [2]string{project, keyHash}
	hk, ok := r.health[id]
	if !ok {
		hk = [2]string{r.keys.Health(project, keyHash), r.keys.Fails(project, keyHash)}
		r.health[id] = hk
	}
	return hk
}

// addCounter merges contributions to one counter within an event (two counted attempts
// of one request in the same project and minute).
func (p *projectOps) addCounter(key string, n, expireAtMs int64) {
	p.MarkExpireAtMs = max(p.MarkExpireAtMs, expireAtMs)
	for i := range p.Counters {
		if p.Counters[i].Key == key {
			p.Counters[i].N += n
			return
		}
	}
	p.Counters = append(p.Counters, counterOp{Key: key, N: n, ExpireAtMs: expireAtMs})
}

// stateCode names a key-state op.
type stateCode byte

const (
	// codeCooldown writes Value to Key expiring at AtMs unless the key already expires at
	// AtMs or later: a cool-down is extended, never shortened.
	codeCooldown stateCode = 'c'
	// codeSet writes Value to Key without expiry.
	codeSet stateCode = 's'
	// codeDel deletes Keys.
	codeDel stateCode = 'd'
	// codeHealthReset acts on Health as a success at AtMs without latency: failures up
	// to AtMs are forgotten, in any order with the request events (see healthOp).
	codeHealthReset stateCode = 'r'
)

// stateOp is one change a key-state event makes. Ops of one project are applied in the
// order of its events.
type stateOp struct {
	Code  stateCode
	Keys  []string
	Value string
	AtMs  int64
	// Health is the reset for codeHealthReset.
	Health healthOp
}

// keyStateOps turns a key-state event into ops. Applying an event's ops twice, or
// re-applying any suffix of a project's events in order (what redelivery does), leaves
// the state the first application left, so no applied marks are needed:
//   - cooldown takes the later of the existing and the new expiry (a maximum);
//   - clear_cooldown, disable, enable and key_removed overwrite or delete (the last one
//     wins, and re-applying a suffix ends with the same last one);
//   - enable's health reset is a maximum of ok_ms like a success.
//
// Cool-downs already over at now are skipped.
func keyStateOps(keys schemas.Keys, e *schemas.KeyStateEvent, now time.Time) ([]stateOp, error) {
	if err := schemas.ValidateProject(e.Project); err != nil {
		return nil, err
	}
	switch e.Kind {
	case schemas.KindCooldown:
		if e.UntilMs <= now.UnixMilli() {
			return nil, nil
		}
		v, err := entryJSON(e, e.UntilMs)
		if err != nil {
			return nil, err
		}
		return []stateOp{{Code: codeCooldown, Keys: []string{keys.Cooldown(e.Project, e.Model)}, Value: v, AtMs: e.UntilMs}}, nil
	case schemas.KindClearCooldown:
		return []stateOp{{Code: codeDel, Keys: []string{keys.Cooldown(e.Project, e.Model)}}}, nil
	case schemas.KindDisable:
		v, err := entryJSON(e, 0)
		if err != nil {
			return nil, err
		}
		return []stateOp{{Code: codeSet, Keys: []string{keys.Blacklist(e.Project, e.KeyHash)}, Value: v}}, nil
	case schemas.KindEnable:
		ops := []stateOp{{Code: codeDel, Keys: []string{keys.Blacklist(e.Project, e.KeyHash)}}}
		if exp := time.UnixMilli(e.TimeMs).Add(schemas.HealthTTL).UnixMilli(); exp > now.UnixMilli() {
			ops = append(ops, stateOp{Code: codeHealthReset, Health: healthOp{
				Health:     keys.Health(e.Project, e.KeyHash),
				Fails:      keys.Fails(e.Project, e.KeyHash),
				TsMs:       e.TimeMs,
				Outcome:    outcomeOK,
				ExpireAtMs: exp,
			}})
		}
		return ops, nil
	case schemas.KindKeyRemoved:
		return []stateOp{{Code: codeDel, Keys: []string{
			keys.Blacklist(e.Project, e.KeyHash),
			keys.Health(e.Project, e.KeyHash),
			keys.Fails(e.Project, e.KeyHash),
		}}}, nil
	case schemas.KindKeyAdded:
		return nil, nil
	}
	return nil, fmt.Errorf("key state kind %q unknown", e.Kind)
}

// entryJSON is the seed's blacklist entry for a key-state event.
func entryJSON(e *schemas.KeyStateEvent, expiresAt int64) (string, error) {
	b, err := json.Marshal(schemas.BlacklistEntry{
		KeyHash:       e.KeyHash,
		Project:       e.Project,
		Reason:        e.Reason,
		Timestamp:     e.TimeMs,
		ExpiresAt:     expiresAt,
		Model:         e.Model,
		QuotaExceeded: e.QuotaExceeded,
		QuotaID:       e.QuotaID,
		Source:        e.Source,
		EventID:       e.EventID,
	})
	if err != nil {
		return "", fmt.Errorf("encode blacklist entry of event %s: %w", e.EventID, err)
	}
	return string(b), nil
}

// projectTag is the common start of every key of the project: "<prefix>{<project>}:".
func projectTag(keys schemas.Keys, project string) string {
	return strings.TrimSuffix(keys.ProjectGlob(project), "*")
}
