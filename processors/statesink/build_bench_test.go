package statesink

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/geminicodeapi/gca/schemas"
)

// BenchmarkBuildCalls measures the Go side of ApplyRequests: rules and argument
// encoding, per event, without Valkey.
func BenchmarkBuildCalls(b *testing.B) {
	base := time.Date(2025, 7, 2, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	events := make([]*schemas.RequestEvent, 1000)
	for i := range events {
		p := fmt.Sprintf("proj-%02d", rng.IntN(20))
		events[i] = request(fmt.Sprintf("0194a6b2-7c3d-7e4f-8a1b-%012d", i), modelPro,
			ok(p, p+"-key1", base.Add(time.Duration(rng.IntN(50_000))*time.Millisecond), 1234))
	}
	w := New(nil, testKeys, Options{Now: func() time.Time { return base }})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		calls := w.buildCalls(events, base)
		for _, c := range calls {
			_ = c.args()
		}
	}
	b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
}
