package schemas

import (
	"sync"
	"time"
	// Quota days end at midnight America/Los_Angeles; embed the zone database so the
	// answer does not depend on the host's /usr/share/zoneinfo.
	_ "time/tzdata"
)

// pacific is loaded once; the location is immutable.
var pacific = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		// Unreachable with time/tzdata embedded; a fixed PST offset is the least wrong
		// answer if it ever were.
		return time.FixedZone("PST", -8*3600)
	}
	return loc
})

// Pacific returns the America/Los_Angeles location, where Gemini's daily quotas reset.
func Pacific() *time.Location { return pacific() }

// MinuteOf returns the Unix minute (seconds/60) that t falls in. Per-minute quotas (RPM,
// input TPM) are counted in these fixed clock minutes.
func MinuteOf(t time.Time) int64 { return t.Unix() / 60 }

// MinuteEnd returns the start of the minute after t.
func MinuteEnd(t time.Time) time.Time { return time.Unix((MinuteOf(t)+1)*60, 0) }

// PacificDay returns the quota day that t falls in as YYYYMMDD in America/Los_Angeles.
func PacificDay(t time.Time) string { return t.In(Pacific()).Format("20060102") }

// NextPacificMidnight returns the first midnight America/Los_Angeles after t: the moment
// Gemini's per-day quotas reset. Across a DST change the day is 23 or 25 hours long.
func NextPacificMidnight(t time.Time) time.Time {
	p := t.In(Pacific())
	y, m, d := p.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, Pacific())
}
