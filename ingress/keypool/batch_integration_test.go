//go:build integration

package keypool

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/schemas"
)

// batchEnv is a pool with one project of two keys, and the pair state of its model.
type batchEnv struct {
	p     *Pool
	keys  schemas.Keys
	k1    *Key
	k2    *Key
	state *pairState
	now   time.Time
}

const batchModel = "gemini-2.5-flash"

func newBatchEnv(t *testing.T, limits Limits) *batchEnv {
	client, prefix := testenv.Valkey(t)
	cfg := &Config{Projects: []ProjectConfig{{ID: "bp", Limits: map[string]Limits{batchModel: limits}}}}
	for i := range 2 {
		cfg.Keys = append(cfg.Keys, KeyConfig{Key: NewSecret(fmt.Sprintf("AIzaSyBatch%s_%d", testenv.UniqueName(t, "k"), i)), Project: "bp"})
	}
	require.NoError(t, cfg.Validate())
	now := time.Now()
	p, err := New(client, cfg, Options{
		Timeout: 5 * time.Second, Prefix: prefix, Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	keys := p.set.Load().keys
	return &batchEnv{p: p, keys: schemas.Keys{Prefix: prefix}, k1: keys[0], k2: keys[1], state: p.view.pair("bp", batchModel), now: now}
}

// waiter queues nothing: the tests hand batches to reserveBatch themselves, after the
// accounting reserve does for each request.
func (e *batchEnv) waiter(tokens int64, keys ...*Key) *waiter {
	e.state.mu.Lock()
	e.state.inflight++
	e.state.inflightTok += tokens
	e.state.mu.Unlock()
	return &waiter{
		id: e.p.newReservationID(), tokens: tokens, project: "bp", model: batchModel,
		limits: e.p.set.Load().projects[0].limits.get(batchModel), keys: keys, done: make(chan reserveResult, 1),
	}
}

func (e *batchEnv) pending(t *testing.T) map[string]string {
	m, err := e.p.client.Do(context.Background(), e.p.client.B().Hgetall().Key(e.keys.Pending("bp", batchModel)).Build()).AsStrMap()
	require.NoError(t, err)
	return m
}

// TestBatchAdmitsInOrder: one script call for five requests admits them one after the
// other, each against the numbers with the earlier ones included, and tries the next
// after a refusal: a request too big for the TPM left is refused while a smaller one
// after it fits, until RPM is used up. The totals hold exactly what was reserved.
func TestBatchAdmitsInOrder(t *testing.T) {
	e := newBatchEnv(t, Limits{RPM: 3, TPM: 1000, RPD: 100})
	batch := []*waiter{
		e.waiter(400, e.k1, e.k2), e.waiter(700, e.k1, e.k2), e.waiter(500, e.k2, e.k1),
		e.waiter(50, e.k1, e.k2), e.waiter(10, e.k1, e.k2),
	}
	e.p.reserveBatch(e.state, batch)
	var got []string
	for _, w := range batch {
		r := <-w.done
		require.NoError(t, r.err)
		if r.lease != nil {
			got = append(got, "ok:"+r.lease.Key.hash)
			require.Equal(t, w.id, r.lease.Reservation)
			require.Equal(t, w.tokens, r.lease.EstimatedTokens)
		} else {
			got = append(got, r.status)
		}
	}
	// Each admitted request has the first usable key in its own order.
	require.Equal(t, []string{"ok:" + e.k1.hash, statusTPM, "ok:" + e.k2.hash, "ok:" + e.k1.hash, statusRPM}, got)

	pending := e.pending(t)
	require.Len(t, pending, 3)
	for _, w := range []*waiter{batch[0], batch[2], batch[3]} {
		require.Contains(t, pending, w.id)
	}
	ctx := context.Background()
	c := e.p.client
	minute := schemas.MinuteOf(e.now)
	tot, err := c.Do(ctx, c.B().Hgetall().Key(e.keys.PendingMinute("bp", batchModel, minute)).Build()).AsStrMap()
	require.NoError(t, err)
	require.Equal(t, map[string]string{"r": "3", "t": "950"}, tot)
	day, err := c.Do(ctx, c.B().Get().Key(e.keys.PendingDay("bp", batchModel, schemas.PacificDay(e.now))).Build()).AsInt64()
	require.NoError(t, err)
	require.Equal(t, int64(3), day)
	for key, want := range map[string]time.Time{
		e.keys.Pending("bp", batchModel):                               schemas.DayCounterExpiry(e.now),
		e.keys.PendingMinute("bp", batchModel, minute):                 schemas.MinuteCounterExpiry(e.now),
		e.keys.PendingDay("bp", batchModel, schemas.PacificDay(e.now)): schemas.DayCounterExpiry(e.now),
	} {
		at, err := c.Do(ctx, c.B().Pexpiretime().Key(key).Build()).AsInt64()
		require.NoError(t, err)
		require.Equal(t, want.UnixMilli(), at, key)
	}
	// The view holds the reply, and no call is in flight any more.
	e.state.mu.Lock()
	require.Equal(t, int64(3), e.state.pendReq)
	require.Equal(t, int64(0), e.state.inflight)
	e.state.mu.Unlock()
}

// TestBatchHandsBackWhatNobodyUses: a request that left before its batch ran (its
// context ended) and a request whose only key turned out blacklisted while another
// request of the batch had a usable one both get their reservation deleted again.
func TestBatchHandsBackWhatNobodyUses(t *testing.T) {
	e := newBatchEnv(t, Limits{RPM: 10, TPM: 100_000, RPD: 100})
	ctx := context.Background()
	c := e.p.client
	entry := `{"reason":"invalid","timestamp":1}`
	require.NoError(t, c.Do(ctx, c.B().Set().Key(e.keys.Blacklist("bp", e.k1.hash)).Value(entry).Build()).Error())

	left := e.waiter(100, e.k2)
	left.claimed.Store(true) // its Select returned on a cancelled context
	onlyK1 := e.waiter(100, e.k1)
	either := e.waiter(100, e.k1, e.k2)
	e.p.reserveBatch(e.state, []*waiter{left, onlyK1, either})

	r := <-onlyK1.done
	require.Nil(t, r.lease)
	require.Equal(t, statusDisabled, r.status)
	r = <-either.done
	require.NotNil(t, r.lease)
	require.Equal(t, e.k2.hash, r.lease.Key.hash)
	require.Empty(t, left.done, "nobody waits for the request that left")

	pending := e.pending(t)
	require.Equal(t, []string{either.id}, keysOf(pending))
	tot, err := c.Do(ctx, c.B().Hget().Key(e.keys.PendingMinute("bp", batchModel, schemas.MinuteOf(e.now))).Field("r").Build()).AsInt64()
	require.NoError(t, err)
	require.Equal(t, int64(1), tot)
}

// TestConcurrentReservationsShareCalls: concurrent Selects on one pair need fewer
// script calls than requests, and admit exactly the limit.
func TestConcurrentReservationsShareCalls(t *testing.T) {
	e := newBatchEnv(t, Limits{RPM: 150, TPM: 10_000_000, RPD: 10_000})
	const n = 300
	results := make(chan error, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			_, err := e.p.Select(context.Background(), SelectRequest{Model: batchModel, EstimatedTokens: 10})
			results <- err
		}()
	}
	close(start)
	admitted := 0
	for range n {
		if err := <-results; err == nil {
			admitted++
		}
	}
	require.Equal(t, 150, admitted)
	require.Len(t, e.pending(t), 150)
	calls := histogramCount(t, e.p.metrics.batchSize)
	t.Logf("%d concurrent selections, %d admitted: %d reservation calls", n, admitted, calls)
	// One call per request would take at least one call per admission.
	require.Less(t, calls, uint64(admitted))
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func histogramCount(t *testing.T, h prometheus.Histogram) uint64 {
	var m dto.Metric
	require.NoError(t, h.Write(&m))
	return m.GetHistogram().GetSampleCount()
}
