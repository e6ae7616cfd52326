//go:build bench

package bench

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// quotaRun is one burst of part 6.
type quotaRun struct {
	limit                   int   // sum of the projects' daily limits
	admitted, refused       int   // client answers: 200, and 429 from the gateway
	other                   int   // any other answer or a transport error
	upstreamOK, upstream429 int64 // what the simulator answered
}

// overAdmission is the requests the gateways sent upstream above a project's limit:
// the simulator refuses each of them with a 429, and accepts none beyond the limit.
func (q quotaRun) overAdmission() int64 {
	return q.upstream429 + max(0, q.upstreamOK-int64(q.limit))
}

// runQuota is part 6: a burst against a small pool through two ingress instances.
// The limit is per Pacific day, so that a burst never straddles a window boundary
// (a minute limit would reset under a burst that crosses a minute); the admission
// path is the same reservation script.
func runQuota(b *bench) {
	sz := b.sz
	mustf(b, b.layout.pinLoadGen(), "pin the load generator")
	var runs []quotaRun
	for rep := range sz.Reps {
		// A fresh pool, simulator and Valkey prefix per burst: each starts from full quota.
		b.t.Run(fmt.Sprintf("burst%d", rep+1), func(t *testing.T) {
			r, err := quotaBurst(&bench{t: t, sz: sz, layout: b.layout, bin: b.bin, rep: b.rep, part: b.part}, rep)
			if err != nil {
				t.Fatalf("%v", err)
			}
			t.Logf("burst %d: %d requests, limit %d: admitted %d, gateway 429 %d, other %d; upstream 200 %d, upstream 429 %d",
				rep+1, sz.QuotaBurst, r.limit, r.admitted, r.refused, r.other, r.upstreamOK, r.upstream429)
			runs = append(runs, r)
		})
	}
	if len(runs) < sz.Reps {
		b.t.FailNow()
	}
	col := func(f func(quotaRun) float64) []float64 {
		out := make([]float64, len(runs))
		for i, r := range runs {
			out[i] = f(r)
		}
		return out
	}
	label := fmt.Sprintf("burst of %d, 2 ingresses, %d projects × %d/day", sz.QuotaBurst, sz.QuotaProjects, sz.QuotaLimit)
	b.add(fig(label+": over-admission", "requests", col(func(r quotaRun) float64 { return float64(r.overAdmission()) })).want(exactly(0, "= 0")).
		note("requests sent upstream above a project's limit: the simulator's 429s plus any acceptance beyond the limit (gemsim Stats)"))
	b.add(fig("quota: upstream 429s", "requests", col(func(r quotaRun) float64 { return float64(r.upstream429) })))
	b.add(fig("quota: admitted (client 200s)", "requests", col(func(r quotaRun) float64 { return float64(r.admitted) })).
		vs("limit", col(func(r quotaRun) float64 { return float64(r.limit) })).
		note("1.0× is exact; below 1.0× the gateways refused requests the pool still had quota for"))
	b.add(fig("quota: refused by the gateway (429)", "requests", col(func(r quotaRun) float64 { return float64(r.refused) })))
}

func quotaBurst(b *bench, rep int) (quotaRun, error) {
	sz := b.sz
	lim := e2e.Limits{RPM: 1_000_000, TPM: 1_000_000_000, RPD: int64(sz.QuotaLimit)}
	var projects []gemsim.ProjectConfig
	for p := range sz.QuotaProjects {
		pc := gemsim.ProjectConfig{ID: fmt.Sprintf("quota-r%d-p%d", rep+1, p+1), Tier: gemsim.TierOne}
		for k := range 2 {
			pc.Keys = append(pc.Keys, fmt.Sprintf("AIzaSyQuota-r%d-p%d-k%d-%s", rep+1, p+1, k+1, strings.Repeat("q", 12)))
		}
		projects = append(projects, pc)
	}
	opts := e2e.Options{
		Projects: projects, Limits: keyLimits(lim), Ingresses: 2, CPUs: b.layout.Servers, NoProcessors: true,
		IngressEnv: []string{"GCA_LOG_LEVEL=warn"},
		Sim:        func(c *gemsim.Config) { c.Limits = simLimits(lim) },
	}
	env := b.startGateway(opts)
	client := newClient(sz.QuotaBurst)
	defer client.CloseIdleConnections()
	calls := []*call{nativeCall(client, env.URL(0), env.Token, false), nativeCall(client, env.URL(1), env.Token, false)}

	r := quotaRun{limit: sz.QuotaProjects * sz.QuotaLimit}
	var mu sync.Mutex
	var firstOther error
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range sz.QuotaBurst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			_, err := calls[i%2].do()
			mu.Lock()
			defer mu.Unlock()
			var se *statusError
			switch {
			case err == nil:
				r.admitted++
			case errors.As(err, &se) && se.code == http.StatusTooManyRequests:
				r.refused++
			default:
				r.other++
				if firstOther == nil {
					firstOther = err
				}
			}
		}()
	}
	close(gate)
	wg.Wait()
	// Per project and model, so that the ingresses' model-list calls at start do not count.
	for _, p := range env.Sim.Stats().Projects {
		m := p.Models[benchModel]
		r.upstreamOK += m.Accepted
		r.upstream429 += m.Rejected429
	}
	if r.other > 0 {
		return r, fmt.Errorf("%d answers were neither 200 nor 429, first: %w", r.other, firstOther)
	}
	return r, nil
}
