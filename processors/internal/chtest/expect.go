package chtest

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/geminicodeapi/gca/schemas"
)

// SystemStatsRow is a row of the system_stats view: the seed's columns.
type SystemStatsRow struct {
	Date                time.Time `ch:"date"`
	TotalRequests       uint64    `ch:"total_requests"`
	SuccessfulRequests  uint64    `ch:"successful_requests"`
	FailedRequests      uint64    `ch:"failed_requests"`
	OpenAIRequests      uint64    `ch:"openai_requests"`
	ClaudeRequests      uint64    `ch:"claude_requests"`
	GeminiRequests      uint64    `ch:"gemini_requests"`
	UnknownRequests     uint64    `ch:"unknown_requests"`
	TotalTokensUsed     uint64    `ch:"total_tokens_used"`
	TotalInputTokens    uint64    `ch:"total_input_tokens"`
	TotalOutputTokens   uint64    `ch:"total_output_tokens"`
	AverageResponseTime float64   `ch:"average_response_time"`
	MinResponseTime     uint32    `ch:"min_response_time"`
	MaxResponseTime     uint32    `ch:"max_response_time"`
	ErrorRate           float64   `ch:"error_rate"`
	TimeoutCount        uint64    `ch:"timeout_count"`
	RateLimitCount      uint64    `ch:"rate_limit_count"`
	AuthErrorCount      uint64    `ch:"auth_error_count"`
	TotalRequestSize    uint64    `ch:"total_request_size"`
	TotalResponseSize   uint64    `ch:"total_response_size"`
	StreamRequestCount  uint64    `ch:"stream_request_count"`
	UniqueAPIKeys       uint64    `ch:"unique_api_keys"`
	ActiveAPIKeys       uint64    `ch:"active_api_keys"`
	UpdatedAt           time.Time `ch:"updated_at"`
}

// KeyMetricsRow is a row of the api_key_metrics view: the seed's columns.
type KeyMetricsRow struct {
	KeyHash             string    `ch:"key_hash"`
	TotalRequests       uint64    `ch:"total_requests"`
	SuccessfulRequests  uint64    `ch:"successful_requests"`
	FailedRequests      uint64    `ch:"failed_requests"`
	AverageResponseTime float64   `ch:"average_response_time"`
	LastResponseTime    uint32    `ch:"last_response_time"`
	MinResponseTime     uint32    `ch:"min_response_time"`
	MaxResponseTime     uint32    `ch:"max_response_time"`
	IsHealthy           uint8     `ch:"is_healthy"`
	LastHealthCheck     time.Time `ch:"last_health_check"`
	ConsecutiveFailures uint64    `ch:"consecutive_failures"`
	LastFailureTime     time.Time `ch:"last_failure_time"`
	TotalTokens         uint64    `ch:"total_tokens"`
	TotalInputTokens    uint64    `ch:"total_input_tokens"`
	TotalOutputTokens   uint64    `ch:"total_output_tokens"`
	LastUsed            time.Time `ch:"last_used"`
	FirstSeen           time.Time `ch:"first_seen"`
	CreatedAt           time.Time `ch:"created_at"`
	UpdatedAt           time.Time `ch:"updated_at"`
}

// Precision is how a server stores event times: whole seconds (18.16) or milliseconds.
type Precision bool

// Precisions.
const (
	Seconds      Precision = true
	Milliseconds Precision = false
)

// Time is an event time as the server stores it, normalized for comparison.
func (p Precision) Time(ms int64) time.Time {
	if p == Seconds {
		return time.Unix(ms/1000, 0).UTC()
	}
	return time.UnixMilli(ms).UTC()
}

// norm makes times read back from ClickHouse comparable with require.Equal.
func norm(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

func ok(a *schemas.Attempt) bool { return a.Failure == "" || a.Failure == "none" }

// keyFault: failures that count towards consecutive_failures (see 0006_api_key_metrics.sql).
var keyFault = map[string]bool{"minute_quota": true, "day_quota": true, "quota_unknown": true, "key_invalid": true, "forbidden": true}

func totalTokens(u schemas.Usage) int64 {
	if u.Total > 0 {
		return u.Total
	}
	return u.Input() + u.Output()
}

// ExpectSystemStats computes the system_stats rows for the events, independently of
// ClickHouse, ordered by date.
func ExpectSystemStats(events []*schemas.RequestEvent, p Precision) []SystemStatsRow {
	type acc struct {
		row          SystemStatsRow
		rtSum        uint64
		unique, good map[string]bool
	}
	days := map[time.Time]*acc{}
	for _, e := range events {
		t := p.Time(e.TimeMs)
		day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		a := days[day]
		if a == nil {
			a = &acc{row: SystemStatsRow{Date: day, MinResponseTime: ^uint32(0)}, unique: map[string]bool{}, good: map[string]bool{}}
			days[day] = a
		}
		r := &a.row
		r.TotalRequests++
		if e.HasError() {
			r.FailedRequests++
		} else {
			r.SuccessfulRequests++
		}
		switch e.ClientType {
		case schemas.ClientOpenAI:
			r.OpenAIRequests++
		case schemas.ClientClaude:
			r.ClaudeRequests++
		case schemas.ClientGemini:
			r.GeminiRequests++
		default:
			r.UnknownRequests++
		}
		r.TotalTokensUsed += uint64(totalTokens(e.Usage))
		r.TotalInputTokens += uint64(e.Usage.Input())
		r.TotalOutputTokens += uint64(e.Usage.Output())
		rt := uint32(e.LatencyMs)
		a.rtSum += uint64(rt)
		r.MinResponseTime = min(r.MinResponseTime, rt)
		r.MaxResponseTime = max(r.MaxResponseTime, rt)
		switch e.ErrorType {
		case schemas.ErrTimeout:
			r.TimeoutCount++
		case schemas.ErrRateLimited, schemas.ErrQuotaExhausted:
			r.RateLimitCount++
		case schemas.ErrAuth:
			r.AuthErrorCount++
		}
		r.TotalRequestSize += uint64(e.RequestBytes)
		r.TotalResponseSize += uint64(e.ResponseBytes)
		if e.Stream {
			r.StreamRequestCount++
		}
		if e.KeyHash != "" {
			a.unique[e.KeyHash] = true
		}
		for i := range e.Attempts {
			a.unique[e.Attempts[i].KeyHash] = true
			if ok(&e.Attempts[i]) {
				a.good[e.Attempts[i].KeyHash] = true
			}
		}
		if t.After(r.UpdatedAt) {
			r.UpdatedAt = t
		}
	}
	out := make([]SystemStatsRow, 0, len(days))
	for _, a := range days {
		r := a.row
		r.AverageResponseTime = float64(a.rtSum) / float64(r.TotalRequests)
		r.ErrorRate = float64(r.FailedRequests) / float64(r.TotalRequests)
		r.UniqueAPIKeys = uint64(len(a.unique))
		r.ActiveAPIKeys = uint64(len(a.good))
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Date.Before(out[j].Date) })
	return out
}

// order is the position of an attempt in a key's history: (time, event id, attempt
// number from 1), as api_key_metrics orders them.
type order struct {
	t  time.Time
	id string
	n  int
}

func (a order) after(b order) bool {
	if !a.t.Equal(b.t) {
		return a.t.After(b.t)
	}
	if a.id != b.id {
		return a.id > b.id
	}
	return a.n > b.n
}

// ExpectKeyMetrics computes the api_key_metrics rows for the events, independently of
// ClickHouse, ordered by key hash.
func ExpectKeyMetrics(events []*schemas.RequestEvent, states []*schemas.KeyStateEvent, p Precision) []KeyMetricsRow {
	type failure struct {
		at    order
		fault bool
	}
	type acc struct {
		row       KeyMetricsRow
		rtSum     uint64
		last      order
		lastOK    order
		failures  []failure
		firstSeen time.Time
		seen      bool
	}
	epoch := time.Unix(0, 0).UTC()
	keys := map[string]*acc{}
	for _, e := range events {
		for i := range e.Attempts {
			at := &e.Attempts[i]
			a := keys[at.KeyHash]
			if a == nil {
				a = &acc{row: KeyMetricsRow{KeyHash: at.KeyHash, MinResponseTime: ^uint32(0), LastFailureTime: epoch}}
				keys[at.KeyHash] = a
			}
			r := &a.row
			pos := order{p.Time(at.TimeMs), e.EventID, i + 1}
			lat := uint32(at.LatencyMs)
			r.TotalRequests++
			a.rtSum += uint64(lat)
			r.MinResponseTime = min(r.MinResponseTime, lat)
			r.MaxResponseTime = max(r.MaxResponseTime, lat)
			if !a.seen || pos.after(a.last) {
				a.last, r.LastResponseTime, r.LastUsed = pos, lat, pos.t
			}
			if !a.seen || pos.t.Before(a.firstSeen) {
				a.firstSeen = pos.t
			}
			a.seen = true
			if ok(at) {
				r.SuccessfulRequests++
				if pos.after(a.lastOK) {
					a.lastOK = pos
				}
			} else {
				a.failures = append(a.failures, failure{pos, keyFault[at.Failure]})
				if pos.t.After(r.LastFailureTime) {
					r.LastFailureTime = pos.t
				}
			}
			if at.Counted {
				r.TotalInputTokens += uint64(at.InputTokens)
			}
			if i == len(e.Attempts)-1 {
				r.TotalOutputTokens += uint64(e.Usage.Output())
			}
		}
	}
	type keyState struct {
		lastChange time.Time
		toggle     order
		disabled   bool
		toggled    bool
	}
	ks := map[string]*keyState{}
	for _, e := range states {
		if e.KeyHash == "" {
			continue
		}
		s := ks[e.KeyHash]
		if s == nil {
			s = &keyState{lastChange: epoch}
			ks[e.KeyHash] = s
		}
		t := p.Time(e.TimeMs)
		if t.After(s.lastChange) {
			s.lastChange = t
		}
		if e.Kind == schemas.KindDisable || e.Kind == schemas.KindEnable {
			pos := order{t, e.EventID, 0}
			if !s.toggled || pos.after(s.toggle) {
				s.toggle, s.disabled, s.toggled = pos, e.Kind == schemas.KindDisable, true
			}
		}
	}
	out := make([]KeyMetricsRow, 0, len(keys))
	for _, a := range keys {
		r := a.row
		r.FailedRequests = r.TotalRequests - r.SuccessfulRequests
		r.AverageResponseTime = float64(a.rtSum) / float64(r.TotalRequests)
		for _, f := range a.failures {
			if f.fault && f.at.after(a.lastOK) {
				r.ConsecutiveFailures++
			}
		}
		r.TotalTokens = r.TotalInputTokens + r.TotalOutputTokens
		r.FirstSeen, r.CreatedAt = a.firstSeen, a.firstSeen
		r.LastHealthCheck, r.UpdatedAt = r.LastUsed, r.LastUsed
		disabled := false
		if s := ks[r.KeyHash]; s != nil {
			disabled = s.disabled
			if s.lastChange.After(r.LastUsed) {
				r.LastHealthCheck, r.UpdatedAt = s.lastChange, s.lastChange
			}
		}
		if r.ConsecutiveFailures < 3 && !disabled {
			r.IsHealthy = 1
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].KeyHash < out[j].KeyHash })
	return out
}

// ReadSystemStats reads the system_stats view of a database.
func ReadSystemStats(ctx context.Context, conn driver.Conn, db string) ([]SystemStatsRow, error) {
	var rows []SystemStatsRow
	if err := conn.Select(ctx, &rows, fmt.Sprintf("SELECT * FROM `%s`.system_stats ORDER BY date", db)); err != nil {
		return nil, fmt.Errorf("read %s.system_stats: %w", db, err)
	}
	for i := range rows {
		r := &rows[i]
		r.Date, r.UpdatedAt = norm(r.Date), norm(r.UpdatedAt)
	}
	return rows, nil
}

// ReadKeyMetrics reads the api_key_metrics view of a database.
func ReadKeyMetrics(ctx context.Context, conn driver.Conn, db string) ([]KeyMetricsRow, error) {
	var rows []KeyMetricsRow
	if err := conn.Select(ctx, &rows, fmt.Sprintf("SELECT * FROM `%s`.api_key_metrics ORDER BY key_hash", db)); err != nil {
		return nil, fmt.Errorf("read %s.api_key_metrics: %w", db, err)
	}
	for i := range rows {
		r := &rows[i]
		r.LastHealthCheck, r.LastFailureTime, r.LastUsed = norm(r.LastHealthCheck), norm(r.LastFailureTime), norm(r.LastUsed)
		r.FirstSeen, r.CreatedAt, r.UpdatedAt = norm(r.FirstSeen), norm(r.CreatedAt), norm(r.UpdatedAt)
	}
	return rows, nil
}

// CountRequests counts request_logs the way an analyst does: each event once, merged
// or not (FINAL collapses ReplacingMergeTree duplicates at query time).
func CountRequests(ctx context.Context, conn driver.Conn, db string) (final, distinct, raw uint64, err error) {
	row := conn.QueryRow(ctx, fmt.Sprintf("SELECT (SELECT count() FROM `%[1]s`.request_logs FINAL), (SELECT uniqExact(id) FROM `%[1]s`.request_logs), (SELECT count() FROM `%[1]s`.request_logs)", db))
	if err := row.Scan(&final, &distinct, &raw); err != nil {
		return 0, 0, 0, fmt.Errorf("count %s.request_logs: %w", db, err)
	}
	return final, distinct, raw, nil
}
