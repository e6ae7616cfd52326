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

	got := map[string][]string{}
	for part := range 4 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: testenv.KafkaBrokers(), Topic: topic, Partition: part, MaxWait: 100 * time.Millisecond})
		end, err := r.ReadLag(ctx)
		require.NoError(t, err)
		for range end {
			m, err := r.ReadMessage(ctx)
			require.NoError(t, err)
			got[string(m.Key)] = append(got[string(m.Key)], string(m.Value))
		}
		require.NoError(t, r.Close())
	}
	for _, k := range keys {
		require.Len(t, got[k], perKey, "key %s", k)
		for i, v := range got[k] {
			require.Equal(t, fmt.Sprintf("%s-%04d", k, i), v)
		}
	}
}
