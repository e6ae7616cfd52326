//go:build bench

package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// streamRun is one repetition of part 3.
type streamRun struct {
	completed      int
	chunks         int64
	chunksPerSec   float64
	peakRSSMB      float64
	hwmMB          float64
	cpuPerChunkUs  float64
	simPerChunkUs  float64
	ingressBusy    float64 // ingress CPU time / wall time, in % of one CPU
	peakConcurrent int64
	gapP99Ms       float64
	firstErr       error
}

// runStreams is part 3: many concurrent SSE streams through one ingress.
func runStreams(b *bench) {
	sz := b.sz
	mustf(b, b.layout.pinLoadGen(), "pin the load generator")
	sim := b.startSim("sim-streams", gemsim.Config{
		Projects: benchProjects(), Limits: simLimits(bigLimits),
		StreamChunks: sz.StreamChunks, ChunkInterval: gemsim.Duration(sz.StreamInterval),
	})
	env := b.startGateway(b.gatewayOpts(sim.Addr, benchProjects(), bigLimits))
	// Each repetition gets a fresh ingress, so that its memory high-water mark is the
	// repetition's own.
	_, _ = env.Ingress[0].Stop(30 * time.Second)
	var runs []streamRun
	for rep := range sz.Reps {
		ing := env.NewIngress()
		b.startProc(ing)
		r := streamOnce(ing.PID(), sim.PID(), "http://"+ing.Addr, env.Token, sz)
		_, _ = ing.Stop(30 * time.Second)
		if r.firstErr != nil {
			b.t.Fatalf("repetition %d: %d of %d streams complete; first failure: %v", rep+1, r.completed, sz.Streams, r.firstErr)
		}
		b.t.Logf("rep %d: %d/%d complete, %.0f chunks/s, peak RSS %.0f MB (HWM %.0f), %.1f µs CPU/chunk (simulator %.1f), ingress busy %.0f%%, peak concurrent %d, chunk gap p99 %.1f ms",
			rep+1, r.completed, sz.Streams, r.chunksPerSec, r.peakRSSMB, r.hwmMB, r.cpuPerChunkUs, r.simPerChunkUs, r.ingressBusy, r.peakConcurrent, r.gapP99Ms)
		runs = append(runs, r)
	}
	col := func(f func(streamRun) float64) []float64 {
		out := make([]float64, len(runs))
		for i, r := range runs {
			out[i] = f(r)
		}
		return out
	}
	n := float64(sz.Streams)
	ideal := n * float64(sz.StreamChunks) / (time.Duration(sz.StreamChunks-1) * sz.StreamInterval).Seconds()
	idealCol := make([]float64, len(runs))
	for i := range idealCol {
		idealCol[i] = ideal
	}
	label := fmt.Sprintf("%d streams × %d chunks, %s apart", sz.Streams, sz.StreamChunks, sz.StreamInterval)
	b.add(fig(label+": complete", "streams", col(func(r streamRun) float64 { return float64(r.completed) })).want(exactly(n, fmt.Sprintf("= %d", sz.Streams))))
	b.add(fig("streams: peak concurrent open", "streams", col(func(r streamRun) float64 { return float64(r.peakConcurrent) })))
	b.add(fig("streams: chunks/s delivered", "chunks/s", col(func(r streamRun) float64 { return r.chunksPerSec })).
		vs("all at once", idealCol).note("the baseline is every stream open at once for its whole life: streams × chunks / ((chunks−1) × interval); ramp-up and tail lower the ratio"))
	b.add(fig("streams: inter-chunk gap p99", "ms", col(func(r streamRun) float64 { return r.gapP99Ms })).
		vs("interval", col(func(streamRun) float64 { return float64(sz.StreamInterval) / float64(time.Millisecond) })))
	b.add(fig("streams: ingress peak RSS", "MB", col(func(r streamRun) float64 { return max(r.peakRSSMB, r.hwmMB) })).want(atMost(300, "≤ 300 MB")))
	b.add(fig("streams: ingress CPU busy", "% of a CPU", col(func(r streamRun) float64 { return r.ingressBusy })))
	b.add(fig("streams: ingress CPU per chunk", "µs", col(func(r streamRun) float64 { return r.cpuPerChunkUs })).
		note("ingress process CPU (user+system) over the repetition, start-up of the streams included, / chunks delivered; the simulator, on the same core, spent %.1f µs per chunk",
			summarize(col(func(r streamRun) float64 { return r.simPerChunkUs })).Median))
	if b.profileDir != "" {
		b.profileStreams(env, sim.PID())
	}
}

// profileStreams takes a CPU profile of a fresh ingress during one more repetition
// (not counted in the table).
func (b *bench) profileStreams(env *e2e.Env, simPID int) {
	addr, err := e2e.FreeAddr()
	mustf(b, err, "free port")
	ing := env.NewIngress("GCA_PPROF_ADDR=" + addr)
	b.startProc(ing)
	defer func() { _, _ = ing.Stop(30 * time.Second) }()
	path := filepath.Join(b.profileDir, "ingress-cpu-streams.pprof")
	perr := make(chan error, 1)
	go func() {
		perr <- fetchTo(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, 2), path)
	}()
	streamOnce(ing.PID(), simPID, "http://"+ing.Addr, env.Token, b.sz)
	if err := <-perr; err != nil {
		b.t.Logf("profile streams: %v", err)
		return
	}
	b.savedProfile(path)
}

// streamOnce opens sz.Streams streams at once against base and reads them to the end.
func streamOnce(pid, simPID int, base, token string, sz sizes) streamRun {
	var r streamRun
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: sz.Streams, DisableCompression: true}}
	defer client.CloseIdleConnections()
	c := nativeCall(client, base, token, true)

	// Memory is sampled while the streams run; VmHWM covers what the samples miss.
	ctx, stop := context.WithCancel(context.Background())
	var peakKB atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, _, err := procMem(pid); err == nil && rss > peakKB.Load() {
				peakKB.Store(rss)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()

	cpu0, _ := procCPU(pid)
	sim0, _ := procCPU(simPID)
	var (
		mu        sync.Mutex
		gaps      []float64
		chunks    atomic.Int64
		open      atomic.Int64
		peak      atomic.Int64
		completed atomic.Int64
		wg        sync.WaitGroup
	)
	gate := make(chan struct{})
	for range sz.Streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			g, n, err := readStream(c, &open, &peak)
			chunks.Add(int64(n))
			mu.Lock()
			gaps = append(gaps, g...)
			if err == nil && n != sz.StreamChunks {
				err = fmt.Errorf("%d chunks, want %d", n, sz.StreamChunks)
			}
			if err != nil && r.firstErr == nil {
				r.firstErr = err
			}
			mu.Unlock()
			if err == nil {
				completed.Add(1)
			}
		}()
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, _ := procCPU(pid)
	sim1, _ := procCPU(simPID)
	stop()
	<-sampled
	_, hwm, _ := procMem(pid)

	r.completed = int(completed.Load())
	r.chunks = chunks.Load()
	r.chunksPerSec = float64(r.chunks) / elapsed.Seconds()
	r.ingressBusy = 100 * float64(cpu1-cpu0) / float64(elapsed)
	r.peakRSSMB = float64(peakKB.Load()) / 1024
	r.hwmMB = float64(hwm) / 1024
	if r.chunks > 0 {
		r.cpuPerChunkUs = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(r.chunks)
		r.simPerChunkUs = float64(sim1-sim0) / float64(time.Microsecond) / float64(r.chunks)
	}
	r.peakConcurrent = peak.Load()
	r.gapP99Ms = percentile(gaps, 99)
	return r
}

// readStream reads one SSE stream and returns the gaps between its data lines (ms)
// and how many there were. open counts the streams that have their first chunk and
// not yet their end; peak is its maximum.
func readStream(c *call, open, peak *atomic.Int64) ([]float64, int, error) {
	req, err := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(c.body))
	if err != nil {
		return nil, 0, err
	}
	req.Header = c.header.Clone()
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return nil, 0, &statusError{resp.StatusCode, string(b)}
	}
	var gaps []float64
	var last time.Time
	n := 0
	rd := bufio.NewReader(resp.Body)
	for {
		line, err := rd.ReadSlice('\n')
		if bytes.HasPrefix(line, []byte("data:")) {
			now := time.Now()
			if n == 0 {
				o := open.Add(1)
				for p := peak.Load(); o > p && !peak.CompareAndSwap(p, o); p = peak.Load() {
				}
				defer open.Add(-1)
			} else {
				gaps = append(gaps, float64(now.Sub(last))/float64(time.Millisecond))
			}
			last = now
			n++
		}
		if err == io.EOF {
			return gaps, n, nil
		}
		if err != nil && err != bufio.ErrBufferFull {
			return gaps, n, err
		}
	}
}
