//go:build faults

package faults

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/e2e"
)

// TestFaultIngressCrash SIGKILLs the ingress twice under load with the broker up, so
// events are in every state at the kill: appended to the spool and not shipped, in a
// Kafka write, shipped but the spool cursor not saved. The restarted ingress ships
// what its spool holds; nothing acknowledged to a client may be lost, and what was
// shipped twice is dropped by the processors.
func TestFaultIngressCrash(t *testing.T) {
	env := e2e.Start(t, unlimited(e2e.Options{}))
	in := env.Ingress[0]
	l := startLoad("http://"+in.Addr, env.Token, 4, 2*time.Millisecond)
	require.True(t, l.waitServed(50, 30*time.Second))
	waitProcessing(t, env, 20)
	var atKill, atRestart []float64
	for kill := 0; kill < 2; kill++ {
		require.True(t, l.waitServed(300, 30*time.Second), "load before kill %d", kill)
		// Requests in flight at the kill fail on the client side: never acknowledged.
		atKill = append(atKill, metric(in.Addr, "gca_ingress_spool_bytes"))
		in.Kill()
		require.NoError(t, in.Start(30*time.Second))
		atRestart = append(atRestart, metric(in.Addr, "gca_ingress_spool_bytes"))
	}
	require.True(t, l.waitServed(300, 30*time.Second), "load after the restarts")
	results := l.stop()
	a := settle(t, env, scope{Stats: true}, results, in)
	require.Zero(t, a.Lost, "acknowledged but lost: %v", first(a.Missing, 5))
	require.Zero(t, a.Duplicated)
	require.Empty(t, a.OutOfOrder)
	noPanic(t, env.Processors)
	a.Scenario = "ingress SIGKILL ×2 under load (broker up)"
	a.Note = fmt.Sprintf("unshipped spool bytes just before each kill %v, still unshipped when the restarted ingress was ready %v; %d requests failed at the kills or during the restarts (never acknowledged); %d records shipped twice after a restart, deduped",
		atKill, atRestart, len(results)-countServed(results), a.KafkaDuplicates)
	report(t, a.row)
}
