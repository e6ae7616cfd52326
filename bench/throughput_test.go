//go:build bench

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// loadResult is one closed-loop run.
type loadResult struct {
	rps float64
	// cpuPerReq is the CPU time the server under test (ingress or proxy) spent per
	// request during the measured window, in µs; simCPUPerReq the simulator's.
	cpuPerReq, simCPUPerReq float64
	busy                    float64 // server CPU time / wall time, in % of one CPU
	requests                int64
	reserve                 reserveStats // gateway runs: the Valkey reservation round trips
}

// closedLoop keeps conns requests in flight for warm+dur and counts the answers of
// the last dur. Every answer must be a 200: anything else fails the run. serverPID
// and simPID are sampled for their CPU time over the measured window.
func closedLoop(mk func(*http.Client) *call, conns int, warm, dur time.Duration, serverPID, simPID int) (loadResult, error) {
	client := newClient(conns)
	defer client.CloseIdleConnections()
	c := mk(client)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := c.do(); err != nil {
					if ctx.Err() == nil {
						errOnce.Do(func() { firstErr = err; cancel() })
					}
					return
				}
				done.Add(1)
			}
		}()
	}
	time.Sleep(warm)
	n0, t0 := done.Load(), time.Now()
	s0, err1 := procCPU(serverPID)
	m0, err2 := procCPU(simPID)
	time.Sleep(dur)
	n1, t1 := done.Load(), time.Now()
	s1, err3 := procCPU(serverPID)
	m1, err4 := procCPU(simPID)
	cancel()
	wg.Wait()
	if firstErr != nil {
		return loadResult{}, fmt.Errorf("a request failed (every answer must be 200): %w", firstErr)
	}
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return loadResult{}, err
	}
	n := n1 - n0
	if n == 0 {
		return loadResult{}, errors.New("no request completed in the measured window")
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(n) }
	return loadResult{rps: float64(n) / t1.Sub(t0).Seconds(), cpuPerReq: us(s1 - s0), simCPUPerReq: us(m1 - m0),
		busy: 100 * float64(s1-s0) / float64(t1.Sub(t0)), requests: n}, nil
}

// runThroughput is part 2: requests/s with 64 connections through the gateway and
// through a bare reverse proxy to the same simulator, interleaved.
func runThroughput(b *bench) {
	sz := b.sz
	mustf(b, b.layout.pinLoadGen(), "pin the load generator")
	sim := b.startSim("sim-throughput", gemsim.Config{Projects: benchProjects(), Limits: simLimits(bigLimits)})
	pprofAddr, err := e2e.FreeAddr()
	mustf(b, err, "free port")
	env := b.startGateway(b.gatewayOpts(sim.Addr, benchProjects(), bigLimits, "GCA_PPROF_ADDR="+pprofAddr))
	proxy := b.startProxy(sim.Addr)
	key := benchProjects()[0].Keys[0]
	gwPID, proxyPID, simPID := env.Ingress[0].PID(), proxy.PID(), sim.PID()

	meter, err := newReserveMeter(env.URL(0))
	mustf(b, err, "read the ingress's metrics")
	runs := map[string]func() (loadResult, error){
		"proxy": func() (loadResult, error) {
			return closedLoop(func(c *http.Client) *call { return nativeCall(c, "http://"+proxy.Addr, key, false) }, sz.Conns, sz.LoadWarm, sz.LoadDuration, proxyPID, simPID)
		},
		"native": func() (loadResult, error) {
			return closedLoop(func(c *http.Client) *call { return nativeCall(c, env.URL(0), env.Token, false) }, sz.Conns, sz.LoadWarm, sz.LoadDuration, gwPID, simPID)
		},
		"openai": func() (loadResult, error) {
			return closedLoop(func(c *http.Client) *call { return openaiCall(c, env.URL(0), env.Token) }, sz.Conns, sz.LoadWarm, sz.LoadDuration, gwPID, simPID)
		},
	}
	// ABBA order: drift of the machine (other tenants, Kafka and ClickHouse merges)
	// falls on both sides alike.
	orders := [][]string{{"proxy", "native", "openai"}, {"openai", "native", "proxy"}}
	res := map[string][]loadResult{}
	for rep := range sz.Reps {
		for _, name := range orders[rep%2] {
			_ = meter.mark()
			r, err := runs[name]()
			mustf(b, err, "repetition %d, %s", rep+1, name)
			if name != "proxy" {
				r.reserve, _ = meter.since()
			}
			res[name] = append(res[name], r)
			b.t.Logf("rep %d %s: %.0f req/s, server CPU %.0f µs/req (busy %.0f%%), simulator %.0f µs/req, Valkey reservation p50 %.0f µs, mean %.0f µs", rep+1, name, r.rps, r.cpuPerReq, r.busy, r.simCPUPerReq, r.reserve.p50, r.reserve.mean)
		}
	}
	col := func(name string, f func(loadResult) float64) []float64 {
		out := make([]float64, len(res[name]))
		for i, r := range res[name] {
			out[i] = f(r)
		}
		return out
	}
	rps := func(r loadResult) float64 { return r.rps }
	cpu := func(r loadResult) float64 { return r.cpuPerReq }
	b.add(fig(fmt.Sprintf("native: gateway req/s (%d conns)", sz.Conns), "req/s", col("native", rps)).
		vs("bare proxy req/s", col("proxy", rps)).want(ratioAtLeast(0.9, "≥ 0.9× proxy")))
	b.add(fig(fmt.Sprintf("openai-translated: gateway req/s (%d conns)", sz.Conns), "req/s", col("openai", rps)).
		vs("bare proxy req/s", col("proxy", rps)).want(ratioAtLeast(0.7, "≥ 0.7× proxy")))
	b.add(fig("native: server CPU per request", "µs", col("native", cpu)).vs("bare proxy µs", col("proxy", cpu)).
		note("CPU time of the ingress (or proxy) process over the measured window / requests; the simulator shares its core and spends %.0f µs per request", summarize(col("proxy", func(r loadResult) float64 { return r.simCPUPerReq })).Median))
	b.add(fig("openai-translated: server CPU per request", "µs", col("openai", cpu)).vs("bare proxy µs", col("proxy", cpu)))
	b.add(fig("native: server CPU busy", "% of a CPU", col("native", func(r loadResult) float64 { return r.busy })).
		vs("bare proxy %", col("proxy", func(r loadResult) float64 { return r.busy })).
		note("below 100%% the server waited rather than computed: for the gateway, on its Valkey reservations (next row)"))
	b.add(fig(fmt.Sprintf("native: ingress → Valkey reservation at %d conns, p50", sz.Conns), "µs", col("native", func(r loadResult) float64 { return r.reserve.p50 })))
	b.add(fig(fmt.Sprintf("native: ingress → Valkey reservation at %d conns, mean", sz.Conns), "µs", col("native", func(r loadResult) float64 { return r.reserve.mean })))

	if b.profileDir != "" {
		b.profile(env, pprofAddr, gwPID, simPID)
	}
}

// profile takes a CPU profile of the ingress under the native and the translated
// load (not counted in the table) and writes it with its top functions, for the
// report's analysis of a missed target.
func (b *bench) profile(env *e2e.Env, pprofAddr string, gwPID, simPID int) {
	secs := int(b.sz.LoadDuration / time.Second)
	for name, mk := range map[string]func(*http.Client) *call{
		"native": func(c *http.Client) *call { return nativeCall(c, env.URL(0), env.Token, false) },
		"openai": func(c *http.Client) *call { return openaiCall(c, env.URL(0), env.Token) },
	} {
		path := filepath.Join(b.profileDir, "ingress-cpu-"+name+".pprof")
		var perr error
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(b.sz.LoadWarm)
			perr = fetchTo(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, secs), path)
		}()
		_, err := closedLoop(mk, b.sz.Conns, b.sz.LoadWarm, time.Duration(secs+1)*time.Second, gwPID, simPID)
		wg.Wait()
		if err = errors.Join(err, perr); err != nil {
			b.t.Logf("profile %s: %v", name, err)
			continue
		}
		b.savedProfile(path)
	}
}

// savedProfile writes the top functions of an ingress profile beside it and lists it
// in the report.
func (b *bench) savedProfile(path string) { b.savedProfileOf(b.bin.Ingress, path) }

func (b *bench) savedProfileOf(binary, path string) {
	top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=40", binary, path).CombinedOutput()
	if err != nil {
		b.t.Logf("pprof -top %s: %v", path, err)
	}
	_ = os.WriteFile(path+".top.txt", top, 0o644)
	// Recorded relative to the repository, so results.json holds no machine paths.
	if root, err := filepath.Abs(".."); err == nil {
		if abs, err := filepath.Abs(path); err == nil {
			if rel, err := filepath.Rel(root, abs); err == nil {
				path = rel
			}
		}
	}
	b.rep.mu.Lock()
	b.rep.Profiles = append(b.rep.Profiles, path)
	b.rep.mu.Unlock()
	b.t.Logf("CPU profile: %s (top functions in %s.top.txt)", path, path)
}

func fetchTo(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}
