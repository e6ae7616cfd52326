package statesink

import (
	"strconv"
	"time"

	"github.com/geminicodeapi/gca/schemas"
)

// Expected returns the state that applying events and then keyStates (in their order)
// must leave in Valkey at now, keyed like Snapshot (without the prefix). It runs the
// same rules as the Writer (requestOps, keyStateOps) against an in-memory model of the
// few Valkey commands the scripts use, so Snapshot after the writer applied the events
// with the clock at now equals Expected for the same events: that is what the
// consistency check and replay tests compare.
//
// Request events may be given in any order and may repeat: their effect does not depend
// on order, and a repeat is skipped by its applied mark. Key-state events are applied
// after the request events; only key_removed (which deletes health) does not commute
// with them, so a key removed and then used again may differ.
func Expected(events []*schemas.RequestEvent, keyStates []*schemas.KeyStateEvent, now time.Time) map[string]Value {
	m := &model{nowMs: now.UnixMilli(), kv: map[string]*Value{}}
	var keys schemas.Keys // no prefix: keys come out as Snapshot returns them
	r := newRules(keys, now)
	for _, e := range events {
		ops, _ := r.requestOps(e)
		for i := range ops {
			m.applyRequest(&ops[i])
		}
	}
	for _, e := range keyStates {
		ops, err := keyStateOps(keys, e, now)
		if err != nil {
			continue // the writer rejects it too
		}
		for _, op := range ops {
			m.applyState(op)
		}
	}
	out := make(map[string]Value, len(m.kv))
	for k := range m.kv {
		if v := m.get(k); v != nil {
			out[k] = *v
		}
	}
	return out
}

// model is an in-memory Valkey holding strings, hashes and sorted sets with absolute
// expiry, as far as the scripts use them.
type model struct {
	nowMs int64
	kv    map[string]*Value
}

// get returns the live value at k; an expired key is gone.
func (m *model) get(k string) *Value {
	v := m.kv[k]
	if v != nil && v.ExpireAtMs != 0 && v.ExpireAtMs <= m.nowMs {
		delete(m.kv, k)
		return nil
	}
	return v
}

// pexpireTime mirrors PEXPIRETIME: -2 for a missing key, -1 for one without expiry.
func (m *model) pexpireTime(k string) int64 {
	v := m.get(k)
	switch {
	case v == nil:
		return -2
	case v.ExpireAtMs == 0:
		return -1
	}
	return v.ExpireAtMs
}

func (m *model) hash(k string) *Value {
	v := m.get(k)
	if v == nil {
		v = &Value{Type: TypeHash, Hash: map[string]string{}}
		m.kv[k] = v
	}
	return v
}

// applyRequest mirrors luaRequests for one event of one project.
func (m *model) applyRequest(p *projectOps) {
	if m.get(p.Mark) != nil {
		return
	}
	m.kv[p.Mark] = &Value{Type: TypeString, String: "1", ExpireAtMs: p.MarkExpireAtMs}
	for _, c := range p.Counters {
		v := m.get(c.Key)
		if v == nil {
			v = &Value{Type: TypeString, String: "0"}
			m.kv[c.Key] = v
		}
		n, _ := strconv.ParseInt(v.String, 10, 64)
		v.String = strconv.FormatInt(n+c.N, 10)
		v.ExpireAtMs = c.ExpireAtMs
	}
	for _, h := range p.Health {
		m.applyHealth(h)
	}
}

// applyHealth mirrors apply_health for a single op.
func (m *model) applyHealth(h healthOp) {
	cur := m.get(h.Health)
	var curHash map[string]string
	if cur != nil {
		curHash = cur.Hash
	}
	ok, _ := strconv.ParseInt(curHash[schemas.HealthOKMs], 10, 64)
	if h.Outcome == outcomeOK && h.TsMs > ok {
		ok = h.TsMs
		m.hash(h.Health).Hash[schemas.HealthOKMs] = strconv.FormatInt(ok, 10)
		if f := m.get(h.Fails); f != nil {
			for member, score := range f.ZSet {
				if int64(score) <= ok {
					delete(f.ZSet, member)
				}
			}
			if len(f.ZSet) == 0 {
				delete(m.kv, h.Fails)
			}
		}
	}
	if h.Outcome == outcomeFail {
		fm, _ := strconv.ParseInt(curHash[schemas.HealthFailMs], 10, 64)
		fk := curHash[schemas.HealthFailKind]
		if h.TsMs > fm || (h.TsMs == fm && h.FailKind > fk) {
			hv := m.hash(h.Health).Hash
			hv[schemas.HealthFailMs] = strconv.FormatInt(h.TsMs, 10)
			hv[schemas.HealthFailKind] = h.FailKind
		}
		if h.TsMs > ok {
			f := m.get(h.Fails)
			if f == nil {
				f = &Value{Type: TypeZSet, ZSet: map[string]float64{}}
				m.kv[h.Fails] = f
			}
			f.ZSet[h.Member] = float64(h.TsMs)
			m.expireMax(h.Fails, h.ExpireAtMs)
		}
	}
	if h.Latency {
		hv := m.hash(h.Health).Hash
		n, _ := strconv.ParseInt(hv[schemas.HealthLatN], 10, 64)
		s, _ := strconv.ParseInt(hv[schemas.HealthLatSumMs], 10, 64)
		hv[schemas.HealthLatN] = strconv.FormatInt(n+1, 10)
		hv[schemas.HealthLatSumMs] = strconv.FormatInt(s+h.LatencyMs, 10)
	}
	m.expireMax(h.Health, h.ExpireAtMs)
}

func (m *model) expireMax(k string, at int64) {
	if cur := m.pexpireTime(k); cur != -2 && cur < at {
		m.kv[k].ExpireAtMs = at
	}
}

// applyState mirrors luaKeyStates for one op.
func (m *model) applyState(op stateOp) {
	switch op.Code {
	case codeCooldown:
		if m.pexpireTime(op.Keys[0]) < op.AtMs {
			m.kv[op.Keys[0]] = &Value{Type: TypeString, String: op.Value, ExpireAtMs: op.AtMs}
		}
	case codeSet:
		m.kv[op.Keys[0]] = &Value{Type: TypeString, String: op.Value}
	case codeDel:
		for _, k := range op.Keys {
			delete(m.kv, k)
		}
	case codeHealthReset:
		m.applyHealth(op.Health)
	}
}
