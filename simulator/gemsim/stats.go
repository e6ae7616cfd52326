package gemsim

import (
	"fmt"
	"time"
)

// Stats is what GET /sim/stats reports. Tests use it to measure over-admission: the
// simulator never accepts beyond a limit, so Rejected429 shows how often a client
// pushed against one.
type Stats struct {
	// Now is the simulator's clock; MinuteStart and PacificDay name the current windows.
	Now         time.Time `json:"now"`
	MinuteStart time.Time `json:"minute_start"`
	PacificDay  string    `json:"pacific_day"`
	// Projects holds the quota state per project and model.
	Projects map[string]ProjectStats `json:"projects"`
	// Keys holds the responses per key and status code; 0 counts connections reset by a
	// fault before any status was sent. Unknown and missing keys are not counted.
	Keys map[string]KeyStats `json:"keys"`
	// PendingFaults is the number of fault uses still queued.
	PendingFaults int64 `json:"pending_faults"`
}

// ProjectStats is one project's quota state, per model used.
type ProjectStats struct {
	Tier   string                `json:"tier"`
	Models map[string]ModelStats `json:"models"`
}

// KeyStats counts the responses one key received.
type KeyStats struct {
	Project   string        `json:"project"`
	Forbidden bool          `json:"forbidden,omitempty"`
	Responses map[int]int64 `json:"responses"`
}

// Stats snapshots the counters. Each project is read atomically; projects are read
// one after the other.
func (s *Server) Stats() Stats {
	now := s.now()
	w := windowAt(now, s.pacific)
	t := s.keys.snapshot()
	st := Stats{
		Now:           now,
		MinuteStart:   time.Unix(w.minute*60, 0).UTC(),
		PacificDay:    fmt.Sprintf("%04d-%02d-%02d", w.day/10000, w.day/100%100, w.day%100),
		Projects:      make(map[string]ProjectStats, len(t.projects)),
		Keys:          make(map[string]KeyStats, len(t.keys)),
		PendingFaults: s.faults.pending.Load(),
	}
	for id, p := range t.projects {
		st.Projects[id] = ProjectStats{Tier: p.tier, Models: p.stats(w)}
	}
	for key, k := range t.keys {
		st.Keys[key] = KeyStats{Project: k.project.id, Forbidden: k.forbidden, Responses: k.counts()}
	}
	return st
}

// Reset clears every counter and quota window and drops queued faults. Keys and
// projects stay.
func (s *Server) Reset() {
	t := s.keys.snapshot()
	for _, p := range t.projects {
		p.reset()
	}
	for _, k := range t.keys {
		k.reset()
	}
	s.faults.clear()
}
