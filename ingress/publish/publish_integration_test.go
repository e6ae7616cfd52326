//go:build integration

package publish

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/ingress/spool"
	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/schemas"
)

// TestShipsToRealKafkaInOrderPerKey publishes events for several keys and reads the
// topic back: every event arrives, and the events of one key arrive in publish order.
func TestShipsToRealKafkaInOrderPerKey(t *testing.T) {
	topic := testenv.Topic(t, "publish", 4)
	sp, err := spool.Open(t.TempDir(), spool.Options{})
	require.NoError(t, err)
	defer sp.Close()
	w := NewKafkaWriter(testenv.KafkaBrokers())
	defer w.Close()
	p := New(sp, w, Options{})
	ctx := testenv.Context(t)
	go func() { _ = p.Run(ctx) }()

	const perKey = 300
	keys := []string{"a", "b", "c", "d", "e"}
	for i := range perKey {
		for _, k := range keys {
			require.NoError(t, p.PublishRaw(topic, []byte(k), []byte(fmt.Sprintf("%s-%04d", k, i))))
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, p.Flush(fctx))

	// Delivery is at least once: a record the broker may have appended before a failed
	// write is sent again, marked (a fresh topic's first writes can fail while its
	// partitions get leaders). Marked copies of a record already read are skipped;
	// an unmarked copy would be a duplicate no consumer looks for, and fails the test.
	got := map[string][]string{}
	seen := map[string]bool{}
	resent := 0
	for part := range 4 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: testenv.KafkaBrokers(), Topic: topic, Partition: part, MaxWait: 100 * time.Millisecond})
		end, err := r.ReadLag(ctx)
		require.NoError(t, err)
		for range end {
			m, err := r.ReadMessage(ctx)
			require.NoError(t, err)
			v := string(m.Value)
			if seen[v] && marked(m) {
				resent++
				continue
			}
			seen[v] = true
			got[string(m.Key)] = append(got[string(m.Key)], v)
		}
		require.NoError(t, r.Close())
	}
	t.Logf("%d marked copies of records sent twice skipped", resent)
	for _, k := range keys {
		require.Len(t, got[k], perKey, "key %s", k)
		for i, v := range got[k] {
			require.Equal(t, fmt.Sprintf("%s-%04d", k, i), v)
		}
	}
}

func marked(m kafka.Message) bool {
	for _, h := range m.Headers {
		if h.Key == schemas.HeaderMaybeDuplicate && string(h.Value) == "1" {
			return true
		}
	}
	return false
}
