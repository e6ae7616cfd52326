//go:build integration

package queries_test

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/geminicodeapi/gca/queries"
	"github.com/geminicodeapi/gca/schemas"
)

// What each query must return for a set of events, computed here from the events
// alone, as the query's header defines it. Values are formatted as queries.Text prints
// them, so they compare with Result.Strings(). Times are whole seconds: the local
// server is 18.16.

func sec(ms int64) time.Time { return time.Unix(ms/1000, 0).UTC() }

// Formatters.
func u(v uint64) string         { return strconv.FormatUint(v, 10) }
func i64(v int64) string        { return strconv.FormatInt(v, 10) }
func f64(v float64) string      { return queries.Text(v, "Float64") }
func ts(t time.Time) string     { return t.UTC().Format(time.DateTime) }
func date(t time.Time) string   { return t.UTC().Format(time.DateOnly) }
func ratio(a, b uint64) float64 { return float64(a) / float64(b) }
func b01(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

func totalTokens(us schemas.Usage) int64 {
	if us.Total > 0 {
		return us.Total
	}
	return us.Input() + us.Output()
}

// quantileExact is ClickHouse's: the element at floor(level * n) of the sorted values.
func quantileExact(vals []uint32, level float64) uint32 {
	if len(vals) == 0 {
		return 0
	}
	s := append([]uint32(nil), vals...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	n := len(s) - 1
	if level < 1 {
		n = int(level * float64(len(s)))
	}
	return s[n]
}

func inWindow(ms int64, from, to time.Time) bool {
	t := sec(ms)
	return !t.Before(from) && t.Before(to)
}

// sortRows orders rows by the given column indexes, each ascending as strings unless
// listed in desc (then compared as numbers, descending).
func sortRows(rows [][]string, less func(a, b []string) bool) [][]string {
	sort.SliceStable(rows, func(i, j int) bool { return less(rows[i], rows[j]) })
	return rows
}

func lessStrings(a, b []string, cols ...int) bool {
	for _, c := range cols {
		if a[c] != b[c] {
			return a[c] < b[c]
		}
	}
	return false
}

var pacific = schemas.Pacific()

// expectQuotaUsage: counted attempts per (project, key, model) in the window of `at`.
func expectQuotaUsage(events []*schemas.RequestEvent, window string, at time.Time, project, keyHash, model string) [][]string {
	var start, end time.Time
	if window == "minute" {
		start = at.Truncate(time.Minute)
		end = start.Add(time.Minute)
	} else {
		p := at.In(pacific)
		start = time.Date(p.Year(), p.Month(), p.Day(), 0, 0, 0, 0, pacific).UTC()
		end = schemas.NextPacificMidnight(at).UTC()
	}
	type acc struct{ n, in, out uint64 }
	groups := map[[3]string]*acc{}
	for _, e := range events {
		if !inWindow(e.TimeMs, start.Add(-time.Hour), end) || (model != "" && e.Model != model) {
			continue
		}
		for i, a := range e.Attempts {
			if !a.Counted || !inWindow(a.TimeMs, start, end) || (project != "" && a.Project != project) || (keyHash != "" && a.KeyHash != keyHash) {
				continue
			}
			k := [3]string{a.Project, a.KeyHash, e.Model}
			g := groups[k]
			if g == nil {
				g = &acc{}
				groups[k] = g
			}
			g.n++
			g.in += uint64(a.InputTokens)
			if i == len(e.Attempts)-1 {
				g.out += uint64(e.Usage.Output())
			}
		}
	}
	var rows [][]string
	for k, g := range groups {
		rows = append(rows, []string{k[0], k[1], k[2], window, ts(start), ts(end), u(g.n), u(g.in), u(g.out), u(g.in + g.out)})
	}
	return sortRows(rows, func(a, b []string) bool { return lessStrings(a, b, 0, 1, 2) })
}

// expectSystemStats: the seed's daily row per UTC day, over every stored row.
func expectSystemStats(stored []*schemas.RequestEvent, from, to time.Time) [][]string {
	type acc struct {
		total, ok, failed, openai, claude, gemini, unknown, tokens, in, out, rtSum uint64
		minRT, maxRT                                                               uint32
		timeouts, rateLimits, auth, reqSize, respSize, streams                     uint64
		unique, active                                                             map[string]bool
		updated                                                                    time.Time
	}
	days := map[time.Time]*acc{}
	for _, e := range stored {
		t := sec(e.TimeMs)
		day := t.Truncate(24 * time.Hour)
		a := days[day]
		if a == nil {
			a = &acc{minRT: ^uint32(0), unique: map[string]bool{}, active: map[string]bool{}}
			days[day] = a
		}
		a.total++
		if e.HasError() {
			a.failed++
		} else {
			a.ok++
		}
		switch e.ClientType {
		case schemas.ClientOpenAI:
			a.openai++
		case schemas.ClientClaude:
			a.claude++
		case schemas.ClientGemini:
			a.gemini++
		default:
			a.unknown++
		}
		a.tokens += uint64(totalTokens(e.Usage))
		a.in += uint64(e.Usage.Input())
		a.out += uint64(e.Usage.Output())
		rt := uint32(e.LatencyMs)
		a.rtSum += uint64(rt)
		a.minRT, a.maxRT = min(a.minRT, rt), max(a.maxRT, rt)
		switch e.ErrorType {
		case schemas.ErrTimeout:
			a.timeouts++
		case schemas.ErrRateLimited, schemas.ErrQuotaExhausted:
			a.rateLimits++
		case schemas.ErrAuth:
			a.auth++
		}
		a.reqSize += uint64(e.RequestBytes)
		a.respSize += uint64(e.ResponseBytes)
		if e.Stream {
			a.streams++
		}
		if e.KeyHash != "" {
			a.unique[e.KeyHash] = true
		}
		for _, at := range e.Attempts {
			a.unique[at.KeyHash] = true
			if at.Failure == "" || at.Failure == "none" {
				a.active[at.KeyHash] = true
			}
		}
		if t.After(a.updated) {
			a.updated = t
		}
	}
	var rows [][]string
	for day, a := range days {
		if day.Before(from) || day.After(to) {
			continue
		}
		rows = append(rows, []string{date(day), u(a.total), u(a.ok), u(a.failed), u(a.openai), u(a.claude), u(a.gemini), u(a.unknown),
			u(a.tokens), u(a.in), u(a.out), f64(ratio(a.rtSum, a.total)), u(uint64(a.minRT)), u(uint64(a.maxRT)),
			f64(ratio(a.failed, a.total)), u(a.timeouts), u(a.rateLimits), u(a.auth), u(a.reqSize), u(a.respSize), u(a.streams),
			u(uint64(len(a.unique))), u(uint64(len(a.active))), ts(a.updated)})
	}
	return sortRows(rows, func(a, b []string) bool { return a[0] < b[0] })
}

// keyMetrics is an api_key_metrics row computed from events.
type keyMetrics struct {
	hash                                    string
	total, ok, consecutive, in, out         uint64
	rtSum                                   uint64
	lastRT, minRT, maxRT                    uint32
	healthy                                 bool
	lastCheck, lastFailure, lastUsed, first time.Time
}

// position orders a key's attempts: (time, event id, attempt number), as the view does.
type position struct {
	t  time.Time
	id string
	n  int
}

func (a position) after(b position) bool {
	if !a.t.Equal(b.t) {
		return a.t.After(b.t)
	}
	if a.id != b.id {
		return a.id > b.id
	}
	return a.n > b.n
}

var keyFault = map[string]bool{"minute_quota": true, "day_quota": true, "quota_unknown": true, "key_invalid": true, "forbidden": true}

// expectKeyMetrics follows 0006_api_key_metrics.sql: totals over every stored row (the
// view's states are additive), consecutive failures over distinct (event, attempt).
func expectKeyMetrics(stored []*schemas.RequestEvent, states []*schemas.KeyStateEvent) []keyMetrics {
	type acc struct {
		m        keyMetrics
		last, ok position
		seen     bool
		failures map[string]position
	}
	keys := map[string]*acc{}
	for _, e := range stored {
		for i, at := range e.Attempts {
			a := keys[at.KeyHash]
			if a == nil {
				a = &acc{m: keyMetrics{hash: at.KeyHash, minRT: ^uint32(0), lastFailure: time.Unix(0, 0).UTC()}, failures: map[string]position{}}
				keys[at.KeyHash] = a
			}
			pos := position{sec(at.TimeMs), e.EventID, i + 1}
			lat := uint32(at.LatencyMs)
			m := &a.m
			m.total++
			m.rtSum += uint64(lat)
			m.minRT, m.maxRT = min(m.minRT, lat), max(m.maxRT, lat)
			if !a.seen || pos.after(a.last) {
				a.last, m.lastRT, m.lastUsed = pos, lat, pos.t
			}
			if !a.seen || pos.t.Before(m.first) {
				m.first = pos.t
			}
			a.seen = true
			if at.Failure == "" || at.Failure == "none" {
				m.ok++
				if pos.after(a.ok) {
					a.ok = pos
				}
			} else {
				if keyFault[at.Failure] {
					a.failures[fmt.Sprintf("%s#%d", e.EventID, i+1)] = pos
				}
				if pos.t.After(m.lastFailure) {
					m.lastFailure = pos.t
				}
			}
			if at.Counted {
				m.in += uint64(at.InputTokens)
			}
			if i == len(e.Attempts)-1 {
				m.out += uint64(e.Usage.Output())
			}
		}
	}
	type keyState struct {
		last     time.Time
		toggle   position
		disabled bool
		toggled  bool
	}
	ks := map[string]*keyState{}
	for _, e := range states {
		if e.KeyHash == "" {
			continue
		}
		s := ks[e.KeyHash]
		if s == nil {
			s = &keyState{last: time.Unix(0, 0).UTC()}
			ks[e.KeyHash] = s
		}
		t := sec(e.TimeMs)
		if t.After(s.last) {
			s.last = t
		}
		if e.Kind == schemas.KindDisable || e.Kind == schemas.KindEnable {
			pos := position{t, e.EventID, 0}
			if !s.toggled || pos.after(s.toggle) {
				s.toggle, s.disabled, s.toggled = pos, e.Kind == schemas.KindDisable, true
			}
		}
	}
	var out []keyMetrics
	for _, a := range keys {
		m := a.m
		for _, p := range a.failures {
			if p.after(a.ok) {
				m.consecutive++
			}
		}
		m.lastCheck = m.lastUsed
		disabled := false
		if s := ks[m.hash]; s != nil {
			disabled = s.disabled
			if s.last.After(m.lastCheck) {
				m.lastCheck = s.last
			}
		}
		m.healthy = m.consecutive < 3 && !disabled
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].hash < out[j].hash })
	return out
}

func expectKeyMetricsRows(metrics []keyMetrics, keyHash string) [][]string {
	var rows [][]string
	for _, m := range metrics {
		if keyHash != "" && m.hash != keyHash {
			continue
		}
		rows = append(rows, []string{m.hash, u(m.total), u(m.ok), u(m.total - m.ok), f64(ratio(m.ok, m.total)),
			f64(ratio(m.rtSum, m.total)), u(uint64(m.lastRT)), u(uint64(m.minRT)), u(uint64(m.maxRT)), b01(m.healthy),
			ts(m.lastCheck), u(m.consecutive), ts(m.lastFailure), u(m.in + m.out), u(m.in), u(m.out),
			ts(m.lastUsed), ts(m.first), ts(m.first), ts(m.lastCheck)})
	}
	return rows
}

func expectKeyHealthRanking(metrics []keyMetrics, minRequests uint64, limit int) [][]string {
	var keep []keyMetrics
	for _, m := range metrics {
		if m.total >= minRequests {
			keep = append(keep, m)
		}
	}
	sort.Slice(keep, func(i, j int) bool {
		a, b := keep[i], keep[j]
		if a.healthy != b.healthy {
			return a.healthy
		}
		if ra, rb := ratio(a.ok, a.total), ratio(b.ok, b.total); ra != rb {
			return ra > rb
		}
		if a.consecutive != b.consecutive {
			return a.consecutive < b.consecutive
		}
		if aa, ab := ratio(a.rtSum, a.total), ratio(b.rtSum, b.total); aa != ab {
			return aa < ab
		}
		return a.hash < b.hash
	})
	var rows [][]string
	for i, m := range keep {
		if i == limit {
			break
		}
		rows = append(rows, []string{i64(int64(i + 1)), m.hash, b01(m.healthy), f64(ratio(m.ok, m.total)), u(m.consecutive),
			f64(ratio(m.rtSum, m.total)), u(m.total), u(m.total - m.ok), ts(m.lastFailure), ts(m.lastUsed)})
	}
	return rows
}

// errorType is error_logs.error_type.
func errorType(e *schemas.RequestEvent) string {
	switch {
	case e.ErrorType != "":
		return e.ErrorType
	case e.Interrupted != "":
		return e.Interrupted
	}
	return "http_" + strconv.Itoa(e.Status)
}

func expectErrorBreakdown(events []*schemas.RequestEvent, from, to time.Time, model string) [][]string {
	type acc struct {
		n           uint64
		keys        map[string]bool
		first, last time.Time
		lastPos     position
		lastMsg     string
	}
	groups := map[[3]string]*acc{}
	var all uint64
	for _, e := range events {
		if !e.HasError() || !inWindow(e.TimeMs, from, to) || (model != "" && e.Model != model) {
			continue
		}
		all++
		k := [3]string{errorType(e), strconv.Itoa(e.Status), e.Model}
		a := groups[k]
		t := sec(e.TimeMs)
		pos := position{t, e.EventID, 0}
		if a == nil {
			a = &acc{keys: map[string]bool{}, first: t, last: t, lastPos: pos, lastMsg: e.ErrorMessage}
			groups[k] = a
		}
		a.n++
		a.keys[e.KeyHash] = true
		if t.Before(a.first) {
			a.first = t
		}
		if t.After(a.last) {
			a.last = t
		}
		if pos.after(a.lastPos) {
			a.lastPos, a.lastMsg = pos, e.ErrorMessage
		}
	}
	var rows [][]string
	for k, a := range groups {
		rows = append(rows, []string{k[0], k[1], k[2], u(a.n), f64(ratio(a.n, all)), u(uint64(len(a.keys))), ts(a.first), ts(a.last), a.lastMsg})
	}
	return sortRows(rows, func(a, b []string) bool {
		na, _ := strconv.ParseUint(a[3], 10, 64)
		nb, _ := strconv.ParseUint(b[3], 10, 64)
		if na != nb {
			return na > nb
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		sa, _ := strconv.Atoi(a[1])
		sb, _ := strconv.Atoi(b[1])
		if sa != sb {
			return sa < sb
		}
		return a[2] < b[2]
	})
}

func expectLatency(events []*schemas.RequestEvent, from, to time.Time, includeErrors bool) [][]string {
	type acc struct {
		rt, ttfb []uint32
		sum      uint64
		max      uint32
	}
	groups := map[[2]string]*acc{}
	for _, e := range events {
		if !inWindow(e.TimeMs, from, to) || (e.HasError() && !includeErrors) {
			continue
		}
		k := [2]string{e.Model, e.ClientType}
		a := groups[k]
		if a == nil {
			a = &acc{}
			groups[k] = a
		}
		rt := uint32(e.LatencyMs)
		a.rt = append(a.rt, rt)
		a.sum += uint64(rt)
		a.max = max(a.max, rt)
		if e.TTFBMs > 0 {
			a.ttfb = append(a.ttfb, uint32(e.TTFBMs))
		}
	}
	var rows [][]string
	for k, a := range groups {
		n := uint64(len(a.rt))
		q := func(v []uint32, l float64) string { return u(uint64(quantileExact(v, l))) }
		rows = append(rows, []string{k[0], k[1], u(n), q(a.rt, 0.5), q(a.rt, 0.9), q(a.rt, 0.99), u(uint64(a.max)), f64(ratio(a.sum, n)),
			u(uint64(len(a.ttfb))), q(a.ttfb, 0.5), q(a.ttfb, 0.9), q(a.ttfb, 0.99)})
	}
	return sortRows(rows, func(a, b []string) bool { return lessStrings(a, b, 0, 1) })
}

func expectTokenUsage(events []*schemas.RequestEvent, from, to time.Time, model string) [][]string {
	type acc struct{ n, in, out, total, cached, thoughts, est uint64 }
	groups := map[[3]string]*acc{}
	for _, e := range events {
		if !inWindow(e.TimeMs, from, to) || (model != "" && e.Model != model) {
			continue
		}
		k := [3]string{date(sec(e.TimeMs)), e.Model, e.ClientType}
		a := groups[k]
		if a == nil {
			a = &acc{}
			groups[k] = a
		}
		a.n++
		a.in += uint64(e.Usage.Input())
		a.out += uint64(e.Usage.Output())
		a.total += uint64(totalTokens(e.Usage))
		a.cached += uint64(e.Usage.Cached)
		a.thoughts += uint64(e.Usage.Thoughts)
		a.est += uint64(e.EstimatedInputTokens)
	}
	var rows [][]string
	for k, a := range groups {
		rows = append(rows, []string{k[0], k[1], k[2], u(a.n), u(a.in), u(a.out), u(a.total), u(a.cached), u(a.thoughts), u(a.est)})
	}
	return sortRows(rows, func(a, b []string) bool { return lessStrings(a, b, 0, 1, 2) })
}

func expectTopClients(events []*schemas.RequestEvent, from, to time.Time, limit int) [][]string {
	type acc struct {
		n, failed, in, out, total uint64
		models, ips               map[string]bool
		first, last               time.Time
	}
	groups := map[string]*acc{}
	for _, e := range events {
		if !inWindow(e.TimeMs, from, to) {
			continue
		}
		t := sec(e.TimeMs)
		a := groups[e.TokenHash]
		if a == nil {
			a = &acc{models: map[string]bool{}, ips: map[string]bool{}, first: t, last: t}
			groups[e.TokenHash] = a
		}
		a.n++
		if e.HasError() {
			a.failed++
		}
		a.in += uint64(e.Usage.Input())
		a.out += uint64(e.Usage.Output())
		a.total += uint64(totalTokens(e.Usage))
		a.models[e.Model] = true
		a.ips[e.ClientIP] = true
		if t.Before(a.first) {
			a.first = t
		}
		if t.After(a.last) {
			a.last = t
		}
	}
	type row struct {
		total uint64
		cells []string
	}
	var list []row
	for k, a := range groups {
		list = append(list, row{a.total, []string{k, u(a.n), u(a.failed), u(a.in), u(a.out), u(a.total),
			u(uint64(len(a.models))), u(uint64(len(a.ips))), ts(a.first), ts(a.last)}})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].total != list[j].total {
			return list[i].total > list[j].total
		}
		return list[i].cells[0] < list[j].cells[0]
	})
	var rows [][]string
	for i, r := range list {
		if i == limit {
			break
		}
		rows = append(rows, r.cells)
	}
	return rows
}

func expectRateLimits(events []*schemas.RequestEvent, from, to time.Time, bucketMinutes int64, project, model string) [][]string {
	type acc struct {
		n, minute, day, other uint64
		keys                  map[string]bool
		retry                 uint32
	}
	groups := map[[3]string]*acc{}
	bucket := bucketMinutes * 60
	for _, e := range events {
		if !inWindow(e.TimeMs, from.Add(-time.Hour), to) || (model != "" && e.Model != model) {
			continue
		}
		for _, a := range e.Attempts {
			if a.Status != 429 || !inWindow(a.TimeMs, from, to) || (project != "" && a.Project != project) {
				continue
			}
			start := time.Unix(sec(a.TimeMs).Unix()/bucket*bucket, 0)
			k := [3]string{ts(start), a.Project, e.Model}
			g := groups[k]
			if g == nil {
				g = &acc{keys: map[string]bool{}}
				groups[k] = g
			}
			g.n++
			switch a.Failure {
			case "minute_quota":
				g.minute++
			case "day_quota":
				g.day++
			default:
				g.other++
			}
			g.keys[a.KeyHash] = true
			g.retry = max(g.retry, uint32(a.RetryAfterMs))
		}
	}
	var rows [][]string
	for k, g := range groups {
		rows = append(rows, []string{k[0], k[1], k[2], u(g.n), u(g.minute), u(g.day), u(g.other), u(uint64(len(g.keys))), u(uint64(g.retry))})
	}
	return sortRows(rows, func(a, b []string) bool { return lessStrings(a, b, 0, 1, 2) })
}

func expectStreamInterruptions(events []*schemas.RequestEvent, from, to time.Time) [][]string {
	type acc struct {
		n, client, upstream, bytes uint64
		cutRT                      []uint32
	}
	groups := map[[2]string]*acc{}
	for _, e := range events {
		if !e.Stream || !inWindow(e.TimeMs, from, to) {
			continue
		}
		k := [2]string{e.Model, e.ClientType}
		a := groups[k]
		if a == nil {
			a = &acc{}
			groups[k] = a
		}
		a.n++
		switch e.Interrupted {
		case schemas.InterruptedClient:
			a.client++
		case schemas.InterruptedUpstream:
			a.upstream++
		}
		if e.Interrupted != "" {
			a.bytes += uint64(e.ResponseBytes)
			a.cutRT = append(a.cutRT, uint32(e.LatencyMs))
		}
	}
	var rows [][]string
	for k, a := range groups {
		rows = append(rows, []string{k[0], k[1], u(a.n), u(a.client), u(a.upstream), f64(ratio(a.client+a.upstream, a.n)),
			u(a.bytes), u(uint64(quantileExact(a.cutRT, 0.5)))})
	}
	return sortRows(rows, func(a, b []string) bool { return lessStrings(a, b, 0, 1) })
}

// partStats are the active parts of one table as the fixture's inserts made them
// (merges stopped): per partition, how many inserts wrote to it and the rows.
type partStats map[string]struct{ parts, rows uint64 }

func (p partStats) add(partition string, rows uint64) {
	s := p[partition]
	s.parts++
	s.rows += rows
	p[partition] = s
}

// expectParts computes, from the inserts, the parts of every table with data. Each
// INSERT writes one part per partition it touches, into request_logs and, through the
// materialized views, into the tables they fill.
func (f *fixture) expectParts() map[string]partStats {
	out := map[string]partStats{}
	for _, t := range mergeTreeTables {
		out[t] = partStats{}
	}
	day := func(ms int64) string { return sec(ms).Format("20060102") }
	month := func(ms int64) string { return sec(ms).Format("200601") }
	for _, block := range f.inserts {
		req, errs, fails := map[string]uint64{}, map[string]uint64{}, map[string]uint64{}
		statsDays := map[string]map[string]bool{}
		keys := map[string]bool{}
		for _, e := range block {
			req[day(e.TimeMs)]++
			if e.HasError() {
				errs[day(e.TimeMs)]++
			}
			m := month(e.TimeMs)
			if statsDays[m] == nil {
				statsDays[m] = map[string]bool{}
			}
			statsDays[m][day(e.TimeMs)] = true
			for _, a := range e.Attempts {
				keys[a.KeyHash] = true
				if !(a.Failure == "" || a.Failure == "none") {
					fails[day(a.TimeMs)]++
				}
			}
		}
		for p, n := range req {
			out["request_logs"].add(p, n)
		}
		for p, n := range errs {
			out["error_logs"].add(p, n)
		}
		for p, n := range fails {
			out["api_key_failures"].add(p, n)
		}
		for p, days := range statsDays {
			out["system_stats_daily"].add(p, uint64(len(days)))
		}
		if len(keys) > 0 {
			out["api_key_metrics_state"].add("all", uint64(len(keys)))
		}
	}
	for _, block := range f.stateInserts {
		n := map[string]uint64{}
		for _, e := range block {
			n[month(e.TimeMs)]++
		}
		for p, c := range n {
			out["key_state_log"].add(p, c)
		}
	}
	for _, block := range f.auditInserts {
		n := map[string]uint64{}
		for _, e := range block {
			n[month(e.TimeMs)]++
		}
		for p, c := range n {
			out["audit_log"].add(p, c)
		}
	}
	return out
}

// retentionTables are the tables the retention drops partitions of, and whether they
// use the stats retention.
var retentionTables = map[string]bool{"request_logs": false, "error_logs": false, "api_key_failures": false, "key_state_log": false, "system_stats_daily": true}

func expectRecommendations(db string, parts map[string]partStats, now time.Time, retention, statsRetention int, maxParts uint64) [][]string {
	var rows [][]string
	for table, ps := range parts {
		if table == "schema_migrations" {
			continue
		}
		for p, s := range ps {
			stats, dropping := retentionTables[table]
			days := retention
			if stats {
				days = statsRetention
			}
			expired := false
			if dropping && days > 0 && p != "all" {
				var end time.Time
				if len(p) == 8 {
					d, _ := time.Parse("20060102", p)
					end = d.AddDate(0, 0, 1)
				} else {
					d, _ := time.Parse("200601", p)
					end = d.AddDate(0, 1, 0)
				}
				expired = !end.AddDate(0, 0, days).After(now)
			}
			switch {
			case expired:
				rows = append(rows, []string{"drop_partition", "medium", db, table, p, u(s.parts), u(s.rows), "*",
					fmt.Sprintf("every row is older than the %d-day retention", days), "frees its disk space; queries scan less",
					fmt.Sprintf("ALTER TABLE `%s`.`%s` DROP PARTITION ID '%s'", db, table, p)})
			case s.parts > maxParts:
				rows = append(rows, []string{"optimize_partition", "high", db, table, p, u(s.parts), u(s.rows), "*",
					fmt.Sprintf("%d active parts (more than %d)", s.parts, maxParts), "faster queries and inserts; duplicates collapsed",
					fmt.Sprintf("OPTIMIZE TABLE `%s`.`%s` PARTITION ID '%s' FINAL", db, table, p)})
			}
		}
	}
	return sortRows(rows, func(a, b []string) bool { return lessStrings(a, b, 1, 3, 4) })
}

// blank replaces the columns that no event determines (bytes) with "*".
func blank(rows [][]string, cols ...int) [][]string {
	for _, r := range rows {
		for _, c := range cols {
			r[c] = "*"
		}
	}
	return rows
}

func expectStorageMetrics(parts map[string]partStats, tables map[string]string) [][]string {
	var rows [][]string
	for name, engine := range tables {
		ps := parts[name]
		var n, total, maxParts uint64
		var oldest, newest string
		for p, s := range ps {
			n += s.rows
			total += s.parts
			maxParts = max(maxParts, s.parts)
			if oldest == "" || p < oldest {
				oldest = p
			}
			if p > newest {
				newest = p
			}
		}
		switch {
		case name == "schema_migrations":
			rows = append(rows, []string{name, engine, "*", "*", "*", "*", "*", "*", "*", "*", "*", "*"})
		case strings.Contains(engine, "MergeTree"):
			rows = append(rows, []string{name, engine, u(n), "*", "*", "*", "*", u(total), u(uint64(len(ps))), u(maxParts), oldest, newest})
		default: // views hold no data
			rows = append(rows, []string{name, engine, "0", "0", "0", "0", "0", "0", "0", "0", "", ""})
		}
	}
	return sortRows(rows, func(a, b []string) bool { return a[0] < b[0] })
}
