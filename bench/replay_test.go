//go:build bench

package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/geminicodeapi/gca/internal/testenv"
)

// replayRun is one repetition of part 5.
type replayRun struct {
	chRate, vkRate float64 // events/s from the first write to the last
	chSecs, vkSecs float64 // from the start of the consumers to the last write
}

// runReplay is part 5: what a replay does, without the switch-over. The events wait
// in a fresh topic; fresh consumer groups read them from the first offset into a
// fresh ClickHouse database and a fresh Valkey prefix, both groups at once, through
// the processors' consumer loop and sinks. As in processors replay, which cannot know
// whether old records were marked by their producer, the ClickHouse sink looks every
// event up (the live consumers look up only where a copy can be; part 4).
func runReplay(b *bench) {
	sz := b.sz
	mustf(b, b.layout.unpin(), "unpin")
	b.claimValkeyDB()
	req, ks, dlq := newTopics(b)
	p := newProducer(testenv.KafkaBrokers(), req, ks)
	defer func() { _ = p.Close() }()
	// Requests, plus the key-state events their failovers caused, up to ReplayEvents.
	requests := sz.ReplayEvents * 100 / 105
	got, err := p.produce(context.Background(), newEventGen(uint64(time.Now().UnixNano())), 0, 0, requests, 10*time.Minute)
	mustf(b, err, "produce the events to replay")
	n := got.events()
	b.add(fig("producing the events to replay", "events/s", []float64{float64(n) / got.elapsed.Seconds()}).
		note("once, before the repetitions: the ingress's Kafka writer settings, 8 writers in parallel"))
	b.t.Logf("produced %d events (%d requests, %d key states) in %s: %.0f events/s", n, got.requests, got.keyStates, got.elapsed.Round(time.Millisecond), float64(n)/got.elapsed.Seconds())

	var runs []replayRun
	var ds []breakdown
	unfinished := 0
	for rep := range sz.Reps {
		s := openSinks(b, req, ks, dlq, false)
		s.ch.withoutOrigins = true
		stopProfile := func() {}
		if rep == 0 && b.profileDir != "" {
			stopProfile = b.profileSelf("replay-consumers")
		}
		start := time.Now()
		s.start()
		err := s.waitFor(n, sz.ReplayCap)
		stopProfile()
		if err != nil && !errors.Is(err, errNotCaughtUp) {
			b.t.Fatalf("replay %d: %v", rep+1, err)
		}
		cutoff := time.Now()
		s.close()
		// A replay still running at the cap is timed by its rate so far: seconds are
		// then the time to its first write plus n at that rate.
		timing := func(m *meteredSink) (rate, secs float64) {
			if m.events >= n {
				return float64(n) / m.last.Sub(m.first).Seconds(), m.last.Sub(start).Seconds()
			}
			if m.events == 0 {
				return 0, math.NaN()
			}
			rate = float64(m.events) / cutoff.Sub(m.first).Seconds()
			return rate, m.first.Sub(start).Seconds() + float64(n)/rate
		}
		var r replayRun
		r.chRate, r.chSecs = timing(s.ch)
		r.vkRate, r.vkSecs = timing(s.vk)
		if s.ch.events < n || s.vk.events < n {
			unfinished++
		}
		ds = append(ds, s.breakdown())
		b.t.Logf("rep %d: clickhouse %d/%d events, %.0f events/s, %.1f s; valkey %d/%d events, %.0f events/s, %.1f s; %s",
			rep+1, s.ch.events, n, r.chRate, r.chSecs, s.vk.events, n, r.vkRate, r.vkSecs, ds[len(ds)-1])
		runs = append(runs, r)
	}
	capNote := ""
	if unfinished > 0 {
		capNote = fmt.Sprintf("; in %d of %d repetitions a sink had not finished within the %s cap: its seconds are projected from its rate", unfinished, len(runs), sz.ReplayCap)
	}
	col := func(f func(replayRun) float64) []float64 {
		out := make([]float64, len(runs))
		for i, r := range runs {
			out[i] = f(r)
		}
		return out
	}
	label := fmt.Sprintf("replay %d events", n)
	b.add(fig(label+" → ClickHouse", "events/s", col(func(r replayRun) float64 { return r.chRate })).want(atLeast(100_000, "≥ 100k/s")).
		note("both groups at once, as a replay runs; events/s from the first batch written to the last, seconds from the consumers' start (group join included)%s", capNote))
	b.add(fig("replay → ClickHouse", "s", col(func(r replayRun) float64 { return r.chSecs })))
	b.add(fig(label+" → Valkey state", "events/s", col(func(r replayRun) float64 { return r.vkRate })).want(atLeast(100_000, "≥ 100k/s")))
	b.add(fig("replay → Valkey state", "s", col(func(r replayRun) float64 { return r.vkSecs })))
	breakdownRows(b, ds)
}

// profileSelf starts a CPU profile of this process (the consumer loops and sinks of
// parts 4 and 5 run in it) and returns the function that stops and saves it.
func (b *bench) profileSelf(name string) func() {
	path := filepath.Join(b.profileDir, name+".pprof")
	f, err := os.Create(path)
	if err != nil {
		b.t.Logf("profile %s: %v", name, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		b.t.Logf("profile %s: %v", name, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		self, _ := os.Executable()
		b.savedProfileOf(self, path)
	}
}
