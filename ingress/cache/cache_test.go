package cache

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestExpiresAfterTTL(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	c := New[string]("models", 10, time.Hour, clk.now)
	c.Set("k", "v")
	v, ok := c.Get("k")
	require.True(t, ok)
	require.Equal(t, "v", v)
	clk.t = clk.t.Add(time.Hour - time.Nanosecond)
	_, ok = c.Get("k")
	require.True(t, ok)
	clk.t = clk.t.Add(time.Nanosecond)
	_, ok = c.Get("k")
	require.False(t, ok, "an entry is dead exactly at its TTL")
	s := c.Stats()
	require.Equal(t, uint64(2), s.Hits)
	require.Equal(t, uint64(1), s.Misses)
	require.Equal(t, uint64(1), s.Expirations)
	require.InDelta(t, 2.0/3, s.HitRate, 1e-9)
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	c := New[int]("r", 2, time.Minute, nil)
	c.Set("a", 1)
	c.Set("b", 2)
	_, _ = c.Get("a") // a is now more recent than b
	c.Set("c", 3)
	_, okA := c.Get("a")
	_, okB := c.Get("b")
	_, okC := c.Get("c")
	require.Equal(t, []bool{true, false, true}, []bool{okA, okB, okC})
	require.Equal(t, uint64(1), c.Stats().Evictions)
}

func TestCollectorExportsStats(t *testing.T) {
	c := New[int]("health", 4, time.Minute, nil)
	c.Set("a", 1)
	_, _ = c.Get("a")
	_, _ = c.Get("missing")
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(func() []Stats { return []Stats{c.Stats()} }))
	n, err := testutil.GatherAndCount(reg, "gca_ingress_cache_hits_total", "gca_ingress_cache_misses_total")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	require.Equal(t, map[string]float64{
		"gca_ingress_cache_hits_total": 1, "gca_ingress_cache_misses_total": 1,
		"gca_ingress_cache_evictions_total": 0, "gca_ingress_cache_entries": 1,
	}, got)
}
