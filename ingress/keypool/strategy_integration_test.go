//go:build integration

package keypool_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/ingress/keypool"
)

func TestStrategies(t *testing.T) {
	ctx := context.Background()

	t.Run("most headroom spreads evenly across equal projects", func(t *testing.T) {
		e := newEnv(t)
		p := e.pool(t, projectsConfig(t,
			projectSpec{id: "p1", keys: 1, rpm: 30}, projectSpec{id: "p2", keys: 2, rpm: 30}, projectSpec{id: "p3", keys: 1, rpm: 30}))
		got := map[string]int{}
		for i := 0; i < 30; i++ {
			l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
			require.NoError(t, err)
			got[l.Key.Project()]++
			// Every three selections the projects are level again.
			if i%3 == 2 {
				require.Equal(t, got["p1"], got["p2"])
				require.Equal(t, got["p2"], got["p3"])
			}
		}
		require.Equal(t, map[string]int{"p1": 10, "p2": 10, "p3": 10}, got)
	})

	t.Run("most headroom prefers the emptier project", func(t *testing.T) {
		e := newEnv(t)
		// p2 is twice p1's size: it takes two requests for each of p1's.
		p := e.pool(t, projectsConfig(t, projectSpec{id: "p1", keys: 1, rpm: 10}, projectSpec{id: "p2", keys: 1, rpm: 20}))
		got := map[string]int{}
		for i := 0; i < 30; i++ {
			l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
			require.NoError(t, err)
			got[l.Key.Project()]++
		}
		require.Equal(t, map[string]int{"p1": 10, "p2": 20}, got)
	})

	t.Run("round robin", func(t *testing.T) {
		e := newEnv(t)
		p := e.pool(t, projectsConfig(t,
			projectSpec{id: "p1", keys: 1, rpm: 100}, projectSpec{id: "p2", keys: 1, rpm: 100}, projectSpec{id: "p3", keys: 1, rpm: 100}),
			func(o *keypool.Options) { o.Strategy = keypool.RoundRobin })
		var seq []string
		for i := 0; i < 7; i++ {
			l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
			require.NoError(t, err)
			seq = append(seq, l.Key.Project())
		}
		require.Equal(t, []string{"p1", "p2", "p3", "p1", "p2", "p3", "p1"}, seq)
	})

	t.Run("round robin rotates keys within a project", func(t *testing.T) {
		e := newEnv(t)
		p := e.pool(t, projectsConfig(t, projectSpec{id: "p1", keys: 3, rpm: 100}))
		got := map[string]int{}
		for i := 0; i < 9; i++ {
			l, err := p.Select(ctx, keypool.SelectRequest{Model: model, Strategy: keypool.RoundRobin})
			require.NoError(t, err)
			got[l.Key.Hash()]++
		}
		require.Len(t, got, 3)
		for _, n := range got {
			require.Equal(t, 3, n)
		}
	})

	t.Run("weighted", func(t *testing.T) {
		e := newEnv(t)
		// Key weights 1 and 3 in one project, 4 in another: shares 1:3:4.
		p := e.pool(t, projectsConfig(t,
			projectSpec{id: "p1", keys: 2, weights: []int{1, 3}}, projectSpec{id: "p2", keys: 1, weights: []int{4}}),
			func(o *keypool.Options) { o.Strategy = keypool.Weighted })
		weightOf := map[string]int{}
		for _, k := range p.Keys() {
			weightOf[k.Hash] = k.Weight
		}
		got := map[int]int{}
		const n = 1600
		for i := 0; i < n; i++ {
			l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
			require.NoError(t, err)
			got[weightOf[l.Key.Hash()]]++
			require.NoError(t, p.Release(ctx, l, keypool.Outcome{}))
		}
		t.Logf("weighted shares of %d selections by key weight: %v", n, got)
		require.InDelta(t, n*1/8, got[1], n*0.04)
		require.InDelta(t, n*3/8, got[3], n*0.05)
		require.InDelta(t, n*4/8, got[4], n*0.05)
	})
}
