//go:build integration

package keypool_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/ingress/keypool"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

// TestFailOpenClosedPort: a pool whose Valkey cannot be reached at all keeps granting
// keys, marked Local, within the limits it can enforce alone.
func TestFailOpenClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	// ForceSingleClient returns a client even though the first dial fails, as an
	// ingress that starts while Valkey is down must.
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, ForceSingleClient: true, DisableCache: true,
		Dialer: net.Dialer{Timeout: 50 * time.Millisecond}})
	require.Error(t, err)
	require.NotNil(t, c)
	t.Cleanup(c.Close)

	e := newEnv(t)
	reg := prometheus.NewRegistry()
	p := e.poolOn(t, c, projectsConfig(t, projectSpec{id: "p1", keys: 1, rpm: 5}, projectSpec{id: "p2", keys: 2, rpm: 3}),
		func(o *keypool.Options) { o.Registerer = reg })
	require.False(t, p.Degraded())
	ctx := context.Background()
	var leases []*keypool.Lease
	for {
		l, err := p.Select(ctx, keypool.SelectRequest{Model: model, EstimatedTokens: 10})
		if err != nil {
			x := exhausted(t, err)
			require.Equal(t, keypool.ExhaustedQuota, x.Reason)
			break
		}
		require.True(t, l.Local)
		require.NotEmpty(t, l.Reservation, "written to Valkey when it answers again")
		leases = append(leases, l)
	}
	require.True(t, p.Degraded())
	// The first failed call may have reserved in Valkey; it counts as admitted, so
	// one admission fewer than the limits.
	require.Len(t, leases, 7)
	require.Equal(t, 1.0, testutil.ToFloat64(gaugeOf(reg, "gca_ingress_keypool_degraded")))
	require.Equal(t, 7.0, testutil.ToFloat64(gaugeOf(reg, "gca_ingress_keypool_fallback_selections_total")))

	// An uncounted local lease gives its admission back.
	require.NoError(t, p.Release(ctx, leases[0], keypool.Outcome{}))
	l, err := p.Select(ctx, keypool.SelectRequest{Model: model, EstimatedTokens: 10})
	require.NoError(t, err)
	require.True(t, l.Local)
	require.Equal(t, leases[0].Key.Project(), l.Key.Project())
	require.Error(t, p.Refresh(ctx))
	require.True(t, p.Degraded())
}

func gaugeOf(reg *prometheus.Registry, name string) prometheus.Collector {
	return &gathered{reg: reg, name: name}
}

// TestFailOpenOutageAndRecovery: Valkey vanishes mid-minute and comes back. During the
// outage the pool admits what its view leaves of the limits; afterwards it reserves
// in Valkey again.
func TestFailOpenOutageAndRecovery(t *testing.T) {
	e := newEnv(t)
	px := newProxy(t)
	cfg := projectsConfig(t, projectSpec{id: "p1", keys: 1, rpm: 6})
	p := e.poolOn(t, px.client(t), cfg)
	other := e.pool(t, cfg) // another replica, still connected
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
		require.NoError(t, err)
		require.False(t, l.Local)
	}
	_, err := other.Select(ctx, keypool.SelectRequest{Model: model})
	require.NoError(t, err)

	px.cut()
	// The view says 3 of 6; the failed call counts as one more: 2 local admissions.
	var local int
	for {
		l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
		if err != nil {
			require.Equal(t, keypool.ExhaustedQuota, exhausted(t, err).Reason)
			break
		}
		require.True(t, l.Local)
		local++
	}
	require.True(t, p.Degraded())
	require.Equal(t, 2, local)
	// Valkey holds 4 of 6 (3 + the other replica's); 2 admitted locally: within the limit.
	require.Len(t, e.pending(t, "p1"), 4)
	t.Logf("outage: view-based over-admission %d (bound: what the other replica took since this one last saw Valkey)", 4+local-6)

	px.restore()
	// Back on Valkey; the next minute starts empty. The first call on a connection the
	// cut left behind can still fail (EOF) and make the pool degraded until the next
	// refresh, as it would in production after a Valkey restart: recovery is a refresh
	// that succeeds followed by a selection that reserves in Valkey.
	e.clock.Add(time.Minute)
	var l *keypool.Lease
	require.Eventually(t, func() bool {
		if p.Refresh(ctx) != nil || p.Degraded() {
			return false
		}
		var err error
		l, err = p.Select(ctx, keypool.SelectRequest{Model: model})
		return err == nil && !l.Local
	}, 5*time.Second, 10*time.Millisecond, "the pool reserves in Valkey again")
	require.NotEmpty(t, l.Reservation)
}

// TestRecoveryHandsLocalAdmissionsOver: when Valkey answers again, the leases this
// instance granted without it are written into Valkey before it reserves there again,
// so the headroom they took is not admitted a second time — by this replica or another
// — while their requests are still running or not yet counted. Each entry goes away as
// any reservation does: deleted at once when the attempt was not counted, by the
// processor that counts it otherwise.
func TestRecoveryHandsLocalAdmissionsOver(t *testing.T) {
	e := newEnv(t)
	px := newProxy(t)
	cfg := projectsConfig(t, projectSpec{id: "p1", keys: 1, rpm: 6})
	p := e.poolOn(t, px.client(t), cfg)
	other := e.pool(t, cfg)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		_, err := p.Select(ctx, keypool.SelectRequest{Model: model})
		require.NoError(t, err)
	}
	_, err := other.Select(ctx, keypool.SelectRequest{Model: model})
	require.NoError(t, err)

	px.cut()
	// The view says 3 of 6 and the failed call may have taken one: 2 local leases. One
	// is still running when Valkey is back, the other was answered and counted by the
	// upstream, its event not yet counted by the processors.
	var local []*keypool.Lease
	for {
		l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
		if err != nil {
			break
		}
		require.True(t, l.Local)
		require.NotEmpty(t, l.Reservation, "a local lease has a reservation id for the handover")
		local = append(local, l)
	}
	require.Len(t, local, 2)
	running, answered := local[0], local[1]
	require.NoError(t, p.Release(ctx, answered, keypool.Outcome{Counted: true}))

	px.restore()
	require.Eventually(t, func() bool { return p.Refresh(ctx) == nil && !p.Degraded() }, 5*time.Second, 10*time.Millisecond)
	pending := e.pending(t, "p1")
	require.Contains(t, pending, running.Reservation)
	require.Contains(t, pending, answered.Reservation)
	require.Len(t, pending, 6, "3 + 1 reserved before the outage, 2 handed over")
	_, err = other.Select(ctx, keypool.SelectRequest{Model: model})
	require.Equal(t, keypool.ExhaustedQuota, exhausted(t, err).Reason, "the local leases' headroom is not admitted twice")

	// The processor counts the answered one: its entry becomes a count.
	e.count(t, answered, 0)
	_, err = other.Select(ctx, keypool.SelectRequest{Model: model})
	require.Error(t, err)
	// The running one fails upstream: its entry is deleted at once, the headroom
	// returns.
	require.NoError(t, p.Release(ctx, running, keypool.Outcome{Failure: gemini.FailureUpstream}))
	require.NotContains(t, e.pending(t, "p1"), running.Reservation)
	require.NoError(t, other.Refresh(ctx)) // its view still says full
	l, err := other.Select(ctx, keypool.SelectRequest{Model: model})
	require.NoError(t, err)
	require.False(t, l.Local)
}
