//go:build bench

package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// latencyKind is one comparison of part 1: a call through the gateway against the
// direct call to the simulator with the same content.
type latencyKind struct {
	name       string
	direct, gw *call
	pairs      int
	p50, p99   *target
}

// pairStats are the percentiles of one repetition, in µs.
type pairStats struct {
	reserve              reserveStats // the ingress's Valkey reservation round trips
	getP50               float64      // a plain Valkey GET from the load generator, p50
	addedP50, addedP99   float64
	directP50, directP99 float64
	gwP50, gwP99         float64
}

// measurePairs sends warm+n pairs on one connection per side and pairs each gateway
// sample with its neighbouring direct sample, alternating which goes first so that
// neither side always follows the other.
func measurePairs(k latencyKind, warm, n int) (pairStats, error) {
	var added, direct, gw []float64
	for i := range warm + n {
		var d, g time.Duration
		var err error
		if i%2 == 0 {
			if d, err = k.direct.do(); err == nil {
				g, err = k.gw.do()
			}
		} else {
			if g, err = k.gw.do(); err == nil {
				d, err = k.direct.do()
			}
		}
		if err != nil {
			return pairStats{}, fmt.Errorf("%s pair %d: %w", k.name, i, err)
		}
		if i < warm {
			continue
		}
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
		added = append(added, us(g-d))
		direct = append(direct, us(d))
		gw = append(gw, us(g))
	}
	return pairStats{
		addedP50: percentile(added, 50), addedP99: percentile(added, 99),
		directP50: percentile(direct, 50), directP99: percentile(direct, 99),
		gwP50: percentile(gw, 50), gwP99: percentile(gw, 99),
	}, nil
}

// runLatency is part 1: added latency on one connection, interleaved.
func runLatency(b *bench) {
	sz := b.sz
	mustf(b, b.layout.pinLoadGen(), "pin the load generator")
	sim := b.startSim("sim-latency", gemsim.Config{
		Projects: benchProjects(), Limits: simLimits(bigLimits),
		StreamChunks: sz.LatencyChunks, ChunkInterval: gemsim.Duration(time.Duration(sz.StreamGapMs) * time.Millisecond),
	})
	env := b.startGateway(b.gatewayOpts(sim.Addr, benchProjects(), bigLimits))
	proxy := b.startProxy(sim.Addr)
	simURL, gwURL := "http://"+sim.Addr, env.URL(0)
	key := benchProjects()[0].Keys[0]
	// One connection each: the direct side and the gateway side.
	direct, gw, hop := newClient(1), newClient(1), newClient(1)
	kinds := []latencyKind{
		// What any extra HTTP hop costs here: the part of the gateway's added latency
		// that is not the gateway's own work.
		{name: "bare proxy hop (native)", direct: nativeCall(direct, simURL, key, false), gw: nativeCall(hop, "http://"+proxy.Addr, key, false),
			pairs: sz.LatencyPairs},
		{name: "native", direct: nativeCall(direct, simURL, key, false), gw: nativeCall(gw, gwURL, env.Token, false),
			pairs: sz.LatencyPairs, p50: atMost(150, "≤ 150 µs"), p99: atMost(500, "≤ 500 µs")},
		{name: "openai-translated", direct: nativeCall(direct, simURL, key, false), gw: openaiCall(gw, gwURL, env.Token),
			pairs: sz.LatencyPairs, p50: atMost(250, "≤ 250 µs")},
		{name: fmt.Sprintf("stream first chunk (%d ms apart)", sz.StreamGapMs), direct: nativeCall(direct, simURL, key, true), gw: nativeCall(gw, gwURL, env.Token, true),
			pairs: sz.StreamPairs, p50: atMost(200, "≤ 200 µs")},
	}
	meter, err := newReserveMeter(gwURL)
	mustf(b, err, "read the ingress's metrics")
	results := make([][]pairStats, len(kinds))
	for rep := range sz.Reps {
		for i, k := range kinds {
			mustf(b, meter.mark(), "read the ingress's metrics")
			st, err := measurePairs(k, sz.LatencyWarm, k.pairs)
			mustf(b, err, "repetition %d", rep+1)
			if i == 1 {
				st.reserve, err = meter.since()
				mustf(b, err, "read the ingress's metrics")
				st.getP50, err = valkeyGetP50(env, 500)
				mustf(b, err, "valkey GET")
			}
			results[i] = append(results[i], st)
			b.t.Logf("rep %d %s: added p50 %.0f µs p99 %.0f µs (direct p50 %.0f, gateway p50 %.0f)", rep+1, k.name, st.addedP50, st.addedP99, st.directP50, st.gwP50)
		}
	}
	for i, k := range kinds {
		col := func(f func(pairStats) float64) []float64 {
			out := make([]float64, len(results[i]))
			for j, s := range results[i] {
				out[j] = f(s)
			}
			return out
		}
		ratio := func(num, den func(pairStats) float64) []float64 {
			return col(func(s pairStats) float64 { return num(s) / den(s) })
		}
		b.add(fig(k.name+": added p50", "µs", col(func(s pairStats) float64 { return s.addedP50 })).
			vsRatios("direct p50", col(func(s pairStats) float64 { return s.directP50 }), "via/direct",
				ratio(func(s pairStats) float64 { return s.gwP50 }, func(s pairStats) float64 { return s.directP50 })).
			want(k.p50))
		b.add(fig(k.name+": added p99", "µs", col(func(s pairStats) float64 { return s.addedP99 })).
			vsRatios("direct p99", col(func(s pairStats) float64 { return s.directP99 }), "via/direct",
				ratio(func(s pairStats) float64 { return s.gwP99 }, func(s pairStats) float64 { return s.directP99 })).
			want(k.p99))
	}
	// kinds[1] is the native gateway: its reservations were measured during its pairs.
	reserve := func(f func(reserveStats) float64) []float64 {
		var out []float64
		for _, s := range results[1] {
			out = append(out, f(s.reserve))
		}
		return out
	}
	gets := reserve(func(reserveStats) float64 { return 0 })
	for i, s := range results[1] {
		gets[i] = s.getP50
	}
	b.add(fig("ingress → Valkey reservation p50", "µs", reserve(func(r reserveStats) float64 { return r.p50 })).vs("Valkey GET p50", gets).
		note("gca_ingress_keypool_valkey_seconds{op=reserve} over the native pairs (interpolated in its buckets): the one Lua round trip on the request path; the baseline is a plain GET from the load generator, right after the pairs"))
	b.add(fig("ingress → Valkey reservation mean", "µs", reserve(func(r reserveStats) float64 { return r.mean })))
}

// valkeyGetP50 times n GETs of a missing key on env's Valkey, one at a time, in µs.
func valkeyGetP50(env *e2e.Env, n int) (float64, error) {
	c := env.VK
	var us []float64
	for range n {
		start := time.Now()
		err := c.Do(context.Background(), c.B().Get().Key(env.Prefix+"bench-missing").Build()).Error()
		if err != nil && !valkey.IsValkeyNil(err) {
			return 0, err
		}
		us = append(us, float64(time.Since(start))/float64(time.Microsecond))
	}
	return percentile(us, 50), nil
}
