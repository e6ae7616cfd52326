package publish

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/ingress/spool"
	"github.com/geminicodeapi/gca/schemas"
)

// flakyWriter fails its first `failures` writes, as a broker that is down would, and
// then records what it is given. It stands in for the broker only in the unit test of
// the retry loop; publish_integration_test.go runs the same path against real Kafka.
type flakyWriter struct {
	mu       sync.Mutex
	failures int
	got      []kafka.Message
}

func (w *flakyWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failures > 0 {
		w.failures--
		return errors.New("kafka: broker not available")
	}
	w.got = append(w.got, msgs...)
	return nil
}

func (w *flakyWriter) Close() error { return nil }

func (w *flakyWriter) values() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, len(w.got))
	for i, m := range w.got {
		out[i] = string(m.Value)
	}
	return out
}

type rawEvent struct{ Key, Body string }

func (e rawEvent) RecordKey() string { return e.Key }

func TestShipsInOrderAfterOutage(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), spool.Options{})
	require.NoError(t, err)
	defer sp.Close()
	w := &flakyWriter{failures: 3}
	p := New(sp, w, Options{BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond, BatchRecords: 7})
	var want []string
	for i := range 100 {
		e := rawEvent{Key: "k", Body: fmt.Sprintf("e%03d", i)}
		require.NoError(t, p.Publish(schemas.TopicRequests, e))
		want = append(want, fmt.Sprintf(`{"Key":"k","Body":"e%03d"}`, i))
	}
	shipAll(t, p)
	require.Equal(t, want, w.values())
	require.Equal(t, schemas.TypeRequest, string(w.got[0].Headers[0].Value))
}

func TestFullSpoolPolicies(t *testing.T) {
	for _, policy := range []FullPolicy{PolicyReject, PolicyDrop} {
		t.Run(string(policy), func(t *testing.T) {
			sp, err := spool.Open(t.TempDir(), spool.Options{MaxBytes: 200})
			require.NoError(t, err)
			defer sp.Close()
			p := New(sp, &flakyWriter{}, Options{Policy: policy})
			var full int
			for range 20 {
				if err := p.Publish(schemas.TopicRequests, rawEvent{Key: "k", Body: "0123456789"}); err != nil {
					require.ErrorIs(t, err, ErrSpoolFull)
					full++
				}
			}
			require.Positive(t, full)
			require.True(t, p.Full())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { _ = p.Run(ctx) }()
			require.Eventually(t, func() bool { return !p.Full() && p.Pending() == 0 }, 5*time.Second, 5*time.Millisecond)
		})
	}
}

// TestAdmitKeepsAReserve: with policy reject, admission closes while the admitted
// requests' events still fit (the reserve), so a request the ingress served is never
// unrecorded; with policy drop it never closes. Each refusal and each event that did not
// fit is counted.
func TestAdmitKeepsAReserve(t *testing.T) {
	cases := []struct {
		policy FullPolicy
		// admitClosesFirst: Admit refuses before any event fails to fit.
		admitClosesFirst bool
	}{
		{PolicyReject, true},
		{PolicyDrop, false},
	}
	for _, c := range cases {
		t.Run(string(c.policy), func(t *testing.T) {
			sp, err := spool.Open(t.TempDir(), spool.Options{MaxBytes: 1000})
			require.NoError(t, err)
			defer sp.Close()
			reg := prometheus.NewRegistry()
			p := New(sp, &flakyWriter{}, Options{Policy: c.policy, AdmitReserve: 200, Registerer: reg})
			admittedAll := true
			var firstDrop = -1
			for i := range 40 {
				if p.Admit() != nil {
					admittedAll = false
					// The events of requests admitted before still fit.
					require.Equal(t, -1, firstDrop, "an event was dropped before admission closed")
					break
				}
				if err := p.Publish(schemas.TopicRequests, rawEvent{Key: "k", Body: "0123456789"}); err != nil && firstDrop < 0 {
					firstDrop = i
				}
			}
			require.Equal(t, c.admitClosesFirst, !admittedAll)
			if c.policy == PolicyReject {
				require.True(t, p.Full())
				require.Equal(t, 1.0, testutil.ToFloat64(p.m.rejected))
				require.Zero(t, testutil.ToFloat64(p.m.dropped))
				// The reserve still takes the events of requests in flight.
				require.NoError(t, p.Publish(schemas.TopicRequests, rawEvent{Key: "k", Body: "0123456789"}))
			} else {
				require.Positive(t, firstDrop)
				require.Positive(t, testutil.ToFloat64(p.m.dropped))
			}
		})
	}
}

// marked reports which messages carry schemas.HeaderMaybeDuplicate.
func (w *flakyWriter) marked() []bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]bool, len(w.got))
	for i, m := range w.got {
		for _, h := range m.Headers {
			if h.Key == schemas.HeaderMaybeDuplicate && string(h.Value) == "1" {
				out[i] = true
			}
		}
	}
	return out
}

func shipAll(t *testing.T, p *Publisher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
	defer fcancel()
	require.NoError(t, p.Flush(fctx))
	cancel()
	require.NoError(t, <-done)
}

// TestMarksWhatMayBeInKafkaAlready: records a previous process spooled (it may have
// shipped them without saving the cursor) and a batch sent again after a failed write
// carry the maybe-duplicate header; records sent once do not.
func TestMarksWhatMayBeInKafkaAlready(t *testing.T) {
	dir := t.TempDir()
	sp, err := spool.Open(dir, spool.Options{})
	require.NoError(t, err)
	p := New(sp, &flakyWriter{}, Options{})
	for i := range 3 {
		require.NoError(t, p.Publish(schemas.TopicRequests, rawEvent{Key: "k", Body: fmt.Sprint("old", i)}))
	}
	require.NoError(t, sp.Close()) // the process stops before shipping them

	sp, err = spool.Open(dir, spool.Options{})
	require.NoError(t, err)
	defer sp.Close()
	w := &flakyWriter{}
	p = New(sp, w, Options{BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond, BatchRecords: 2})
	for i := range 2 {
		require.NoError(t, p.Publish(schemas.TopicRequests, rawEvent{Key: "k", Body: fmt.Sprint("new", i)}))
	}
	shipAll(t, p)
	require.Equal(t, []bool{true, true, true, false, false}, w.marked())

	// A failed write: the batch that failed goes again, marked; the next is not.
	w.failures = 1
	for i := range 4 {
		require.NoError(t, p.Publish(schemas.TopicRequests, rawEvent{Key: "k", Body: fmt.Sprint("late", i)}))
	}
	shipAll(t, p)
	require.Equal(t, []bool{true, true, true, false, false, true, true, false, false}, w.marked())
	require.Len(t, w.values(), 9)
}

// partialWriter delivers, on its first write, only the records at even positions and
// reports the others failed, as kafka-go does when some partitions' produce requests
// fail; later writes deliver everything.
type partialWriter struct{ flakyWriter }

func (w *partialWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failures == 0 {
		w.got = append(w.got, msgs...)
		return nil
	}
	w.failures--
	errs := make(kafka.WriteErrors, len(msgs))
	for i, m := range msgs {
		if i%2 == 0 {
			w.got = append(w.got, m)
		} else {
			errs[i] = kafka.LeaderNotAvailable
		}
	}
	return errs
}

// TestResendsOnlyWhatFailed: after a partly failed write the shipper sends again only
// the records that were not delivered, marked; none is delivered twice.
func TestResendsOnlyWhatFailed(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), spool.Options{})
	require.NoError(t, err)
	defer sp.Close()
	w := &partialWriter{flakyWriter{failures: 1}}
	p := New(sp, w, Options{BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond, BatchRecords: 6})
	for i := range 6 {
		require.NoError(t, p.Publish(schemas.TopicRequests, rawEvent{Key: fmt.Sprint("k", i), Body: fmt.Sprint(i)}))
	}
	shipAll(t, p)
	var bodies []string
	for _, v := range w.values() {
		bodies = append(bodies, v[len(v)-3:len(v)-2])
	}
	require.Equal(t, []string{"0", "2", "4", "1", "3", "5"}, bodies)
	require.Equal(t, []bool{false, false, false, true, true, true}, w.marked())
}
