//go:build faults

package faults

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// TestFaultGracefulShutdown sends SIGTERM to the ingress while streams (3 s each, longer
// than the 1 s read timeout) and slow answers (2 s) are in flight: it stops accepting,
// lets every one of them finish, ships their events and exits 0. Then it sends SIGTERM
// to the processors under load: they finish and commit the batch in hand and exit 0;
// after a restart every event is stored once.
func TestFaultGracefulShutdown(t *testing.T) {
	env := e2e.Start(t, unlimited(e2e.Options{
		Sim: func(c *gemsim.Config) {
			c.StreamChunks = 10
			c.ChunkInterval = gemsim.Duration(300 * time.Millisecond)
		},
		IngressEnv: []string{"GCA_READ_TIMEOUT=1s", "GCA_SHUTDOWN_GRACE=20s"},
	}))
	in := env.Ingress[0]
	base := "http://" + in.Addr

	// In flight: a stream and a slow answer per protocol.
	require.NoError(t, env.Sim.InjectFault(gemsim.FaultRule{Method: "generateContent", Fault: gemsim.Fault{Delay: gemsim.Duration(2 * time.Second)}, Count: 3}))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var inflight []result
	for _, p := range protocols {
		for _, stream := range []bool{true, false} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := send(context.Background(), newHTTPClient(30*time.Second), base, env.Token, call{Proto: p, Stream: stream})
				mu.Lock()
				inflight = append(inflight, r)
				mu.Unlock()
			}()
		}
	}
	time.Sleep(700 * time.Millisecond)
	start := time.Now()
	require.NoError(t, in.Signal(syscall.SIGTERM))
	time.Sleep(200 * time.Millisecond)
	// No new request is accepted once shutdown began.
	late := send(context.Background(), newHTTPClient(2*time.Second), base, env.Token, call{Proto: pOpenAI})
	require.Error(t, late.Err, "a request after SIGTERM was accepted: %d", late.Status)
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := in.Wait(ctx)
	require.NoError(t, err)
	took := time.Since(start)
	require.Zero(t, code, "ingress exit code")
	for _, r := range inflight {
		require.True(t, r.served(), "%s stream=%v cut by the shutdown: %v %d %.200s", r.Proto, r.Stream, r.Err, r.Status, r.Body)
	}
	out := in.Output()
	require.NotContains(t, out, "rest stays spooled", "events left unshipped at exit")
	a := settle(t, env, scope{}, inflight)
	require.Zero(t, a.Lost, "in-flight requests without their event: %v", a.Missing)
	require.Zero(t, a.Duplicated)
	noPanic(t, in)
	a.Scenario = "ingress SIGTERM with streams in flight"
	a.Note = fmt.Sprintf("3 streams of 3s (read timeout 1s) + 3 answers of 2s completed; new connections refused; events flushed; exit 0 after %s", took.Round(100*time.Millisecond))
	report(t, a.row)

	// The processors: SIGTERM under load.
	require.NoError(t, in.Start(30*time.Second))
	// Streams last 3 s in this Env: the load here has none, so batches keep coming.
	l := startLoadOf(base, env.Token, 4, 2*time.Millisecond, false)
	require.True(t, l.waitServed(300, 30*time.Second))
	proc := env.Processors
	// SIGTERM while the processors are busy writing batches of this load.
	var before uint64
	require.True(t, waitFor(30*time.Second, func() bool {
		err := env.CH.QueryRow(context.Background(), fmt.Sprintf("SELECT uniqExact(id) FROM %s.request_logs", env.Database)).Scan(&before)
		return err == nil && before > 100
	}))
	pstart := time.Now()
	require.NoError(t, proc.Signal(syscall.SIGTERM))
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	pcode, err := proc.Wait(ctx2)
	require.NoError(t, err)
	ptook := time.Since(pstart)
	require.Zero(t, pcode, "processors exit code:\n%s", tail(proc.Output(), 2000))
	pout := proc.Output()
	require.NotContains(t, pout, "batch dropped uncommitted")
	// What the processors wrote before they left is exactly what they committed: the
	// batch in hand was finished and committed, nothing written stays uncommitted.
	offs, _ := committed(t, env)
	var done int64
	for _, o := range offs {
		done += max(o, 0)
	}
	var stored uint64
	require.NoError(t, env.CH.QueryRow(context.Background(), fmt.Sprintf("SELECT uniqExact(id) FROM %s.request_logs", env.Database)).Scan(&stored))
	require.Equal(t, int64(stored), done, "rows written but not committed (or committed but not written) at exit")
	require.True(t, l.waitServed(100, 20*time.Second), "the ingress serves while the processors are away")
	restarted := env.NewProcessors()
	env.Processors = restarted
	require.NoError(t, restarted.Start(60*time.Second))
	results := l.stop()
	b := settle(t, env, scope{Stats: true}, append(results, inflight...), in)
	require.Zero(t, b.Lost, "served but not recorded: %v", first(b.Missing, 5))
	require.Zero(t, b.Duplicated)
	redelivered := metric(restarted.Addr, "gca_processor_duplicates_dropped_total")
	noPanic(t, proc, restarted)
	b.Scenario = "processors SIGTERM under load"
	b.Note = fmt.Sprintf("exit 0 after %s (batch in hand written and committed); %d rows written = %d offsets committed at exit; restart redelivered %.0f already-stored events, dropped", ptook.Round(time.Millisecond), stored, done, redelivered)
	report(t, b.row)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
