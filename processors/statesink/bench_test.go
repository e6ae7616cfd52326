//go:build integration

package statesink

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/schemas"
)

// benchEvents returns n events shaped like a busy pool's: 20 projects of 5 keys, three
// models, one attempt in ten failing over to a second project, a few failures, all
// within the current minute.
func benchEvents(rng *rand.Rand, n int, base time.Time, run string) []*schemas.RequestEvent {
	models := []string{modelPro, modelFlash, "gemini-2.5-flash-lite"}
	out := make([]*schemas.RequestEvent, n)
	for i := range out {
		ts := base.Add(time.Duration(rng.IntN(50_000)) * time.Millisecond)
		p := fmt.Sprintf("proj-%02d", rng.IntN(20))
		k := fmt.Sprintf("%s-key%d", p, rng.IntN(5))
		a := ok(p, k, ts, int64(100+rng.IntN(8000)))
		a.LatencyMs = int64(200 + rng.IntN(3000))
		atts := []schemas.Attempt{a}
		switch rng.IntN(20) {
		case 0, 1:
			q := fmt.Sprintf("proj-%02d", rng.IntN(20))
			atts = []schemas.Attempt{failed(q, q+"-key0", ts, 429, "minute_quota"), a}
		case 2:
			atts = []schemas.Attempt{failed(p, k, ts, 503, "upstream")}
		}
		out[i] = request(fmt.Sprintf("%s-%08d", run, i), models[rng.IntN(len(models))], atts...)
	}
	return out
}

// BenchmarkApplyRequests applies batches of fresh events from one or several
// goroutines (processor instances sharing partitions). Run with -benchtime=200x or so;
// it reports events/s and the CPU time Valkey and this process spent per event, which
// says more than events/s on a machine shared with other work.
func BenchmarkApplyRequests(b *testing.B) {
	for _, c := range []struct{ writers, batch int }{{1, 1000}, {2, 1000}, {4, 1000}, {1, 5000}} {
		b.Run(fmt.Sprintf("writers=%d/batch=%d", c.writers, c.batch), func(b *testing.B) {
			benchApply(b, c.writers, c.batch)
		})
	}
}

func benchApply(b *testing.B, writers, batch int) {
	c, prefix := testenv.Valkey(b)
	ctx := testenv.Context(b)
	base := time.Now().Truncate(time.Minute)
	w := New(c, schemas.Keys{Prefix: prefix}, Options{Now: func() time.Time { return base }})
	rng := rand.New(rand.NewPCG(11, 12))
	batches := make([][]*schemas.RequestEvent, b.N*writers)
	for i := range batches {
		batches[i] = benchEvents(rng, batch, base, fmt.Sprintf("b%d", i))
	}
	cpu0, self0 := valkeyCPU(b, c), selfCPU(b)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(batches); i += writers {
				if err := w.ApplyRequests(ctx, batches[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	events := float64(len(batches) * batch)
	b.ReportMetric(events/elapsed.Seconds(), "events/s")
	b.ReportMetric((valkeyCPU(b, c)-cpu0).Seconds()*1e6/events, "valkey-cpu-µs/event")
	b.ReportMetric((selfCPU(b)-self0).Seconds()*1e6/events, "go-cpu-µs/event")
	// Keep the benchmark honest: every request counted once.
	u, err := NewReader(c, schemas.Keys{Prefix: prefix}).Usage(ctx, "proj-00", modelPro, base)
	require.NoError(b, err)
	require.Positive(b, u.DayRequests)
}

// BenchmarkReplayRedelivery applies batches that were all applied before: the cost of
// a replay over state that already holds them (every event skipped by its mark).
func BenchmarkReplayRedelivery(b *testing.B) {
	c, prefix := testenv.Valkey(b)
	ctx := testenv.Context(b)
	base := time.Now().Truncate(time.Minute)
	w := New(c, schemas.Keys{Prefix: prefix}, Options{Now: func() time.Time { return base }})
	events := benchEvents(rand.New(rand.NewPCG(13, 14)), 1000, base, "r")
	require.NoError(b, w.ApplyRequests(ctx, events))
	cpu0, self0 := valkeyCPU(b, c), selfCPU(b)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		require.NoError(b, w.ApplyRequests(ctx, events))
	}
	n := float64(b.N * len(events))
	b.ReportMetric(n/time.Since(start).Seconds(), "events/s")
	b.ReportMetric((valkeyCPU(b, c)-cpu0).Seconds()*1e6/n, "valkey-cpu-µs/event")
	b.ReportMetric((selfCPU(b)-self0).Seconds()*1e6/n, "go-cpu-µs/event")
}

// valkeyCPU is the CPU time the Valkey server has used (user + system, all threads).
// On a machine shared with other work, events/s says little about Valkey's own cost;
// CPU per event does. Other clients of the same server add to it.
func valkeyCPU(b *testing.B, c valkey.Client) time.Duration {
	b.Helper()
	info, err := c.Do(context.Background(), c.B().Info().Section("cpu").Build()).ToString()
	require.NoError(b, err)
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(b, err)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

// selfCPU is the CPU time this process has used (user + system).
func selfCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
