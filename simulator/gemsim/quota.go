package gemsim

import (
	"sync"
	"time"
)

// quotaKind names one of the three quotas of a (project, model) pair.
type quotaKind int

const (
	quotaRPM quotaKind = iota
	quotaTPM
	quotaRPD
)

// violation is one quota a request would exceed.
type violation struct {
	kind  quotaKind
	limit int64
	// retry is the honest wait: to the end of the clock minute for RPM and TPM, to the
	// next midnight America/Los_Angeles for RPD.
	retry time.Duration
}

// window locates an instant in the quota windows: the clock minute (RPM, TPM) and the
// Pacific calendar day (RPD), with the instants they end.
type window struct {
	minute    int64
	minuteEnd time.Time
	day       int64
	dayEnd    time.Time
}

// windowAt computes the windows of now. The day is the calendar day in pacific, so it
// ends at local midnight whatever the DST offset; it never ends at UTC midnight.
func windowAt(now time.Time, pacific *time.Location) window {
	minute := now.Unix() / 60
	if now.Unix() < 0 && now.Unix()%60 != 0 {
		minute--
	}
	y, m, d := now.In(pacific).Date()
	return window{
		minute:    minute,
		minuteEnd: time.Unix((minute+1)*60, 0),
		day:       int64(y)*10000 + int64(m)*100 + int64(d),
		dayEnd:    time.Date(y, m, d+1, 0, 0, 0, 0, pacific),
	}
}

// usage is what a project consumed of one model's quotas, and its lifetime totals.
type usage struct {
	minute         int64
	minuteRequests int64
	minuteTokens   int64
	day            int64
	dayRequests    int64

	accepted int64
	rejected int64
}

// roll starts new windows when w is past the ones the counters belong to.
func (u *usage) roll(w window) {
	if u.minute != w.minute {
		u.minute, u.minuteRequests, u.minuteTokens = w.minute, 0, 0
	}
	if u.day != w.day {
		u.day, u.dayRequests = w.day, 0
	}
}

// project is one Google Cloud project: the quota state its keys share.
type project struct {
	id     string
	tier   string
	limits map[string]Limits

	// mu makes check-and-consume atomic; it is never held across a sleep or a write.
	mu    sync.Mutex
	usage map[string]*usage
}

// newProject creates a project with no usage.
func newProject(id, tier string, limits map[string]Limits) *project {
	return &project{id: id, tier: tier, limits: limits, usage: make(map[string]*usage)}
}

// admit checks a call of `requests` requests and `tokens` input tokens against the
// model's quotas and consumes them when all fit. Otherwise it consumes nothing, counts
// one rejection and returns every violated quota, the per-day one first.
func (p *project) admit(model string, requests, tokens int64, now time.Time, w window) []violation {
	l := p.limits[model]
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.usage[model]
	if u == nil {
		u = &usage{}
		p.usage[model] = u
	}
	u.roll(w)
	var vs []violation
	if l.RPD > 0 && u.dayRequests+requests > l.RPD {
		vs = append(vs, violation{kind: quotaRPD, limit: l.RPD, retry: w.dayEnd.Sub(now)})
	}
	if l.RPM > 0 && u.minuteRequests+requests > l.RPM {
		vs = append(vs, violation{kind: quotaRPM, limit: l.RPM, retry: w.minuteEnd.Sub(now)})
	}
	if l.TPM > 0 && u.minuteTokens+tokens > l.TPM {
		vs = append(vs, violation{kind: quotaTPM, limit: l.TPM, retry: w.minuteEnd.Sub(now)})
	}
	if len(vs) > 0 {
		u.rejected++
		return vs
	}
	u.minuteRequests += requests
	u.minuteTokens += tokens
	u.dayRequests += requests
	u.accepted += requests
	return nil
}

// ModelStats is the quota state of one (project, model) pair.
type ModelStats struct {
	// Limits in force; zero is unlimited.
	Limits Limits `json:"limits"`
	// MinuteRequests and MinuteInputTokens were accepted in the current clock minute.
	MinuteRequests    int64 `json:"minute_requests"`
	MinuteInputTokens int64 `json:"minute_input_tokens"`
	// DayRequests were accepted in the current Pacific day.
	DayRequests int64 `json:"day_requests"`
	// Accepted counts every request accepted since start or the last reset (a batch
	// embedding counts one per entry).
	Accepted int64 `json:"accepted_total"`
	// Rejected429 counts the quota 429 responses sent (faults not included).
	Rejected429 int64 `json:"rejected_429_total"`
}

// stats reports every model the project used, as seen at w.
func (p *project) stats(w window) map[string]ModelStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]ModelStats, len(p.usage))
	for model, u := range p.usage {
		ms := ModelStats{Limits: p.limits[model], Accepted: u.accepted, Rejected429: u.rejected}
		if u.minute == w.minute {
			ms.MinuteRequests, ms.MinuteInputTokens = u.minuteRequests, u.minuteTokens
		}
		if u.day == w.day {
			ms.DayRequests = u.dayRequests
		}
		out[model] = ms
	}
	return out
}

// reset forgets all usage.
func (p *project) reset() {
	p.mu.Lock()
	clear(p.usage)
	p.mu.Unlock()
}
