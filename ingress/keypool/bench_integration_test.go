//go:build integration

package keypool_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/geminicodeapi/gca/ingress/keypool"
)

// BenchmarkSelectRelease measures the key pool's share of every request against the
// real Valkey: Select (one reservation round trip) and Release.
//
//	counted:   a success; Release makes no round trip, the processors delete the
//	           reservation (simulated here outside the measured time)
//	uncounted: a failed attempt; Release deletes the reservation (a second round trip)
//
// It reports the p50 and p99 of the measured pair in µs.
func BenchmarkSelectRelease(b *testing.B) {
	for _, counted := range []bool{true, false} {
		name := "uncounted"
		if counted {
			name = "counted"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b)
			e.clock = nil
			p := e.pool(b, projectsConfig(b,
				projectSpec{id: "p1", keys: 2}, projectSpec{id: "p2", keys: 2}, projectSpec{id: "p3", keys: 2}),
				func(o *keypool.Options) { o.Now = time.Now; o.Timeout = time.Second })
			ctx := context.Background()
			req := keypool.SelectRequest{Model: model, EstimatedTokens: 500}
			// Warm up: load the script, open the connections.
			for i := 0; i < 100; i++ {
				l, err := p.Select(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				_ = p.Release(ctx, l, keypool.Outcome{})
			}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				l, err := p.Select(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Release(ctx, l, keypool.Outcome{Counted: counted, Latency: 300 * time.Millisecond}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				if counted {
					// The processor counts the attempt and deletes its reservation.
					b.StopTimer()
					e.count(b, l, 0)
					b.StartTimer()
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
		})
	}
}

// BenchmarkSelectParallel measures throughput with concurrent callers, as a busy
// ingress has them.
func BenchmarkSelectParallel(b *testing.B) {
	e := newEnv(b)
	p := e.pool(b, projectsConfig(b,
		projectSpec{id: "p1", keys: 2}, projectSpec{id: "p2", keys: 2}, projectSpec{id: "p3", keys: 2}),
		func(o *keypool.Options) { o.Now = time.Now; o.Timeout = time.Second })
	ctx := context.Background()
	req := keypool.SelectRequest{Model: model, EstimatedTokens: 500}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l, err := p.Select(ctx, req)
			if err != nil {
				b.Error(err)
				return
			}
			_ = p.Release(ctx, l, keypool.Outcome{})
		}
	})
}

// BenchmarkBaselineGet is one plain GET on the same client, to read the numbers above
// against the machine's round trip at the time of the run.
func BenchmarkBaselineGet(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		_ = e.client.Do(ctx, e.client.B().Get().Key(e.prefix+"x").Build()).Error()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}
