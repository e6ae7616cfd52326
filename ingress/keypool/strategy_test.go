package keypool

import (
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas"
)

func testPool(t *testing.T, s Strategy) *Pool {
	p, err := New(nil, &Config{}, Options{Strategy: s, Rand: rand.New(rand.NewPCG(7, 9)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	return p
}

func cands(headrooms ...float64) []*candidate {
	var out []*candidate
	for i, h := range headrooms {
		pr := &project{id: string(rune('a' + i))}
		k := &Key{hash: pr.id, weight: 1, project: pr}
		pr.keys = []*Key{k}
		out = append(out, &candidate{project: pr, keys: []*Key{k}, headroom: h})
	}
	return out
}

func ids(cs []*candidate) string {
	s := ""
	for _, c := range cs {
		s += c.project.id
	}
	return s
}

func TestOrderMostHeadroom(t *testing.T) {
	p := testPool(t, MostHeadroom)
	cs := cands(0.2, 0.9, 0.5)
	p.order(MostHeadroom, cs)
	require.Equal(t, "bca", ids(cs))

	// Equal projects come first equally often.
	first := map[string]int{}
	for i := 0; i < 3000; i++ {
		cs := cands(1, 1, 1, 0.5)
		p.order(MostHeadroom, cs)
		first[cs[0].project.id]++
		require.Equal(t, "d", cs[3].project.id)
	}
	for _, id := range []string{"a", "b", "c"} {
		require.InDelta(t, 1000, first[id], 150, id)
	}
}

func TestOrderRoundRobin(t *testing.T) {
	p := testPool(t, RoundRobin)
	var got []string
	for i := 0; i < 4; i++ {
		cs := cands(1, 1, 1)
		p.order(RoundRobin, cs)
		got = append(got, ids(cs))
	}
	require.Equal(t, []string{"abc", "bca", "cab", "abc"}, got)
}

func TestOrderWeighted(t *testing.T) {
	p := testPool(t, Weighted)
	first := map[string]int{}
	for i := 0; i < 4000; i++ {
		cs := cands(1, 1)
		cs[1].keys[0].weight = 3
		p.order(Weighted, cs)
		first[cs[0].project.id]++
	}
	require.InDelta(t, 1000, first["a"], 150)
	require.InDelta(t, 3000, first["b"], 150)
}

func TestOrderKeysDemotesSlowAndFailing(t *testing.T) {
	p := testPool(t, MostHeadroom)
	pr := &project{id: "p"}
	var keys []*Key
	for _, h := range []string{"fast", "slow", "failing", "new"} {
		keys = append(keys, &Key{hash: h, weight: 1, project: pr})
	}
	health := func(k *Key) (int, float64, int64) {
		switch k.hash {
		case "fast":
			return 0, 100, 10
		case "slow":
			return 0, 250, 10
		case "failing":
			return 1, 90, 10
		}
		return 0, 0, 0
	}
	for i := 0; i < 4; i++ {
		c := &candidate{project: pr, keys: append([]*Key(nil), keys...)}
		p.orderKeys(MostHeadroom, c, health)
		require.Equal(t, "failing", c.keys[3].hash)
		require.Equal(t, "slow", c.keys[2].hash)
	}
}

func TestWindowOf(t *testing.T) {
	la := schemas.Pacific()
	for _, at := range []time.Time{
		time.Date(2025, 3, 9, 1, 59, 0, 0, la),  // before the spring-forward gap
		time.Date(2025, 3, 9, 3, 0, 0, 0, la),   // after it
		time.Date(2025, 11, 2, 1, 30, 0, 0, la), // the repeated hour
		time.Date(2025, 6, 1, 23, 59, 59, 0, la),
	} {
		w := windowOf(at)
		require.Equal(t, schemas.PacificDay(at), w.day)
		require.Equal(t, schemas.MinuteOf(at), w.minute)
		y, m, d := at.In(la).Date()
		require.Equal(t, time.Date(y, m, d, 0, 0, 0, 0, la).Unix()/60, w.dayStart)
	}
}
