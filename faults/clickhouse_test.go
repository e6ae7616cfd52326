//go:build faults

package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/internal/testenv"
)

// clickhouseOutage is how long ClickHouse stays down under load.
const clickhouseOutage = 15 * time.Second

// committed returns the ClickHouse consumer group's committed offsets of the requests
// topic (partition → offset) and the topic's high watermarks summed.
func committed(t *testing.T, env *e2e.Env) (map[int]int64, int64) {
	t.Helper()
	return committedOf(t, env, env.Database+"-ch")
}

// committedOf returns a consumer group's committed offsets of the requests topic and
// the topic's high watermarks summed.
func committedOf(t *testing.T, env *e2e.Env, group string) (map[int]int64, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(testenv.KafkaBrokers()...), Timeout: 10 * time.Second}
	var parts []int
	var reqs []kafka.OffsetRequest
	for p := range 4 {
		parts = append(parts, p)
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	resp, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{env.Topics.Requests: parts}})
	require.NoError(t, err)
	out := map[int]int64{}
	for _, p := range resp.Topics[env.Topics.Requests] {
		out[p.Partition] = p.CommittedOffset
	}
	offs, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{env.Topics.Requests: reqs}})
	require.NoError(t, err)
	var hw int64
	for _, p := range offs.Topics[env.Topics.Requests] {
		hw += p.LastOffset
	}
	return out, hw
}

// TestFaultClickHouseOutage stops ClickHouse for 15 s while requests flow: the
// processors must stop committing, retry the batch in hand with backoff, resume when
// the server returns, and store every event exactly once (request_logs and the
// system_stats rollup its materialized view maintains).
func TestFaultClickHouseOutage(t *testing.T) {
	st := localStack(t)
	env := e2e.Start(t, unlimited(e2e.Options{}))
	in := env.Ingress[0]
	l := startLoad("http://"+in.Addr, env.Token, 3, 5*time.Millisecond)
	require.True(t, l.waitServed(100, 30*time.Second))
	waitProcessing(t, env, 50)

	st.stop(t, "clickhouse")
	down := time.Now()
	time.Sleep(2 * time.Second) // let the batch in hand fail
	off1, hw1 := committed(t, env)
	time.Sleep(clickhouseOutage - 2*time.Second)
	off2, hw2 := committed(t, env)
	require.Equal(t, off1, off2, "offsets committed while ClickHouse was down")
	require.Greater(t, hw2, hw1, "events kept arriving in Kafka")
	sinkErrors := metric(env.Processors.Addr, "gca_processor_sink_errors_total")
	require.Positive(t, sinkErrors, "the processors retried")
	st.start(t, "clickhouse")
	outage := time.Since(down)
	require.True(t, l.waitServed(100, 30*time.Second))
	results := l.stop()

	a := settle(t, env, scope{Stats: true}, results, in)
	require.Zero(t, a.Lost, "served but not recorded: %v", first(a.Missing, 5))
	require.Zero(t, a.Duplicated)
	require.Equal(t, len(results), countServed(results), "the ingress does not depend on ClickHouse: %v", statusCounts(results))
	out := env.Processors.Output()
	require.Contains(t, out, "write batch: retrying")
	noPanic(t, env.Processors, in)
	a.Scenario = "ClickHouse stopped mid-batch"
	a.Note = fmt.Sprintf("down %s; no commit while down (%d records arrived); %0.f failed writes retried with backoff; count()=uniqExact(id)=%d; system_stats total_requests=%d",
		outage.Round(time.Second), hw2-hw1, sinkErrors, a.Rows, a.StatsTotal)
	report(t, a.row)
}
