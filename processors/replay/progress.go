package replay

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// Progress is a replay's position.
type Progress struct {
	// Phase names what is running: "replay", "catch-up", ...
	Phase string
	// Done is the records written to every target; Total the records in the range.
	Done, Total int64
	// Events is the events written (records minus the ones the consumers reject).
	Events int64
	// Elapsed since the phase started; Rate is Events per second over it.
	Elapsed time.Duration
	Rate    float64
	// ETA is the time left at Rate; 0 when unknown.
	ETA   time.Duration
	Final bool
}

// Left is the records still to write.
func (p Progress) Left() int64 { return max(p.Total-p.Done, 0) }

// String renders the progress line the CLI prints.
func (p Progress) String() string {
	pct := 100.0
	if p.Total > 0 {
		pct = 100 * float64(p.Done) / float64(p.Total)
	}
	eta := "-"
	if p.ETA > 0 {
		eta = p.ETA.Round(100 * time.Millisecond).String()
	}
	if p.Final {
		return fmt.Sprintf("%s: done, %s records (%s events) in %s, %s events/s",
			p.Phase, group(p.Done), group(p.Events), p.Elapsed.Round(time.Millisecond), group(int64(p.Rate)))
	}
	return fmt.Sprintf("%s: %s of %s records (%.1f%%), %s events/s, %s left, ETA %s",
		p.Phase, group(p.Done), group(p.Total), pct, group(int64(p.Rate)), group(p.Left()), eta)
}

// group writes n with thousands separators.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, c)
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// meter counts a phase's progress and reports it periodically.
type meter struct {
	phase  string
	total  int64
	start  time.Time
	done   atomic.Int64
	events atomic.Int64
	report func(Progress)
}

func (m *meter) snapshot(now time.Time, final bool) Progress {
	p := Progress{Phase: m.phase, Done: m.done.Load(), Total: m.total, Events: m.events.Load(),
		Elapsed: now.Sub(m.start), Final: final}
	if s := p.Elapsed.Seconds(); s > 0 {
		p.Rate = float64(p.Events) / s
		if rps := float64(p.Done) / s; rps > 0 && !final {
			p.ETA = time.Duration(float64(p.Left()) / rps * float64(time.Second))
		}
	}
	return p
}

// run reports every interval until ctx ends, then once more as final when the phase
// completed.
func (m *meter) run(ctx context.Context, every time.Duration) {
	if m.report == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m.report(m.snapshot(now, false))
		}
	}
}
