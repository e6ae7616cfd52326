//go:build faults

package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/schemas"
)

// scrape returns the /metrics text of a binary.
func scrape(addr string) (string, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// metricValue sums the samples of a metric whose label set contains every one of
// labels (as written in the exposition, e.g. `result="local"`).
func metricValue(text, name string, labels ...string) float64 {
	var sum float64
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, name) {
			continue
		}
		rest := l[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		ok := true
		for _, want := range labels {
			if !strings.Contains(rest, want) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// metric scrapes one metric of a running binary; -1 when it cannot be scraped.
func metric(addr, name string, labels ...string) float64 {
	text, err := scrape(addr)
	if err != nil {
		return -1
	}
	return metricValue(text, name, labels...)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// topicEvent is a request event as found in Kafka.
type topicEvent struct {
	Partition int
	Offset    int64
	Event     schemas.RequestEvent
}

// readTopic reads every record of a topic, partition by partition, in offset order.
func readTopic(t *testing.T, topic string) []topicEvent {
	t.Helper()
	var out []topicEvent
	for _, m := range topicRecords(t, topic) {
		var e schemas.RequestEvent
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Errorf("record %s/%d@%d is not a request event: %v", topic, m.Partition, m.Offset, err)
		}
		out = append(out, topicEvent{Partition: m.Partition, Offset: m.Offset, Event: e})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out
}

// topicRecords returns every record of a topic.
func topicRecords(t *testing.T, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(testenv.KafkaBrokers()...), Timeout: 10 * time.Second}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	offs, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("offsets of %s: %v", topic, err)
	}
	return rawTopic(t, ctx, c, topic, offs)
}

func rawTopic(t *testing.T, ctx context.Context, c *kafka.Client, topic string, offs *kafka.ListOffsetsResponse) []kafka.Message {
	t.Helper()
	brokers := testenv.KafkaBrokers()
	var out []kafka.Message
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("offsets of %s/%d: %v", topic, po.Partition, po.Error)
		}
		if po.LastOffset <= po.FirstOffset {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: po.Partition, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 200 * time.Millisecond})
		if err := r.SetOffset(po.FirstOffset); err != nil {
			t.Fatalf("seek %s/%d: %v", topic, po.Partition, err)
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				_ = r.Close()
				t.Fatalf("read %s/%d: %v", topic, po.Partition, err)
			}
			out = append(out, m)
			if m.Offset >= po.LastOffset-1 {
				break
			}
		}
		_ = r.Close()
	}
	return out
}

// scope selects the part of an Env's events a scenario owns.
type scope struct {
	// Instance, when set, keeps the events of one ingress instance only.
	Instance string
	// Stats compares system_stats with request_logs (only when the scope is the whole
	// database).
	Stats bool
}

func (s scope) where() string {
	if s.Instance == "" {
		return "1"
	}
	return "instance = '" + s.Instance + "'"
}

func (s scope) keep(e *schemas.RequestEvent) bool {
	return s.Instance == "" || e.Instance == s.Instance
}

// accounting is what the checks found for a scenario.
type accounting struct {
	row
	// Missing are served request ids without a row.
	Missing []string
	// KafkaDuplicates counts records of an event id seen before in the topic (allowed:
	// at-least-once; the sinks drop them).
	KafkaDuplicates int
	// OutOfOrder lists order violations of a sequential worker's events.
	OutOfOrder []string
	// StatsTotal is system_stats' total_requests (when asked).
	StatsTotal uint64
	Events     []topicEvent
}

// settle waits until the ingresses' spools are empty and ClickHouse holds every event
// of the scope that reached the topic, then accounts for the served requests.
func settle(t *testing.T, env *e2e.Env, sc scope, results []result, ingresses ...*e2e.Proc) accounting {
	t.Helper()
	for _, p := range ingresses {
		if !p.Running() {
			continue
		}
		if !waitFor(90*time.Second, func() bool { return metric(p.Addr, "gca_ingress_spool_bytes") == 0 }) {
			t.Errorf("%s: spool not drained after 90s (%v bytes)", p.Name, metric(p.Addr, "gca_ingress_spool_bytes"))
		}
	}
	events := map[string]bool{}
	var evs []topicEvent
	for _, te := range readTopic(t, env.Topics.Requests) {
		if sc.keep(&te.Event) {
			evs = append(evs, te)
		}
	}
	a := accounting{Events: evs}
	for _, te := range evs {
		if events[te.Event.EventID] {
			a.KafkaDuplicates++
		}
		events[te.Event.EventID] = true
	}
	a.Scenario = ""
	a.Events = evs
	a.row.Events = len(events)

	where := sc.where()
	var total, uniq uint64
	ok := waitFor(90*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := env.CH.QueryRow(ctx, fmt.Sprintf("SELECT count(), uniqExact(id) FROM %s.request_logs WHERE %s", env.Database, where)).Scan(&total, &uniq)
		return err == nil && uniq >= uint64(len(events))
	})
	if !ok {
		t.Errorf("ClickHouse holds %d distinct rows of %d events after 90s", uniq, len(events))
	}
	// Give a late duplicate a moment to show up before counting.
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := env.CH.QueryRow(ctx, fmt.Sprintf("SELECT count(), uniqExact(id) FROM %s.request_logs WHERE %s", env.Database, where)).Scan(&total, &uniq); err != nil {
		t.Fatalf("count rows: %v", err)
	}
	a.Rows = int(uniq)
	a.Duplicated = int(total - uniq)

	rows, err := env.CH.Query(ctx, fmt.Sprintf("SELECT request_id, uniqExact(id) FROM %s.request_logs WHERE %s GROUP BY request_id", env.Database, where))
	if err != nil {
		t.Fatalf("rows by request: %v", err)
	}
	byRequest := map[string]uint64{}
	for rows.Next() {
		var rid string
		var n uint64
		if err := rows.Scan(&rid, &n); err != nil {
			t.Fatalf("scan: %v", err)
		}
		byRequest[rid] = n
		if n > 1 {
			// One request recorded as two events: the exchange published twice.
			a.Duplicated += int(n - 1)
		}
	}
	_ = rows.Close()
	for _, r := range results {
		if !r.served() {
			continue
		}
		a.Served++
		if byRequest[r.RequestID] == 0 {
			a.Lost++
			a.Missing = append(a.Missing, r.RequestID)
		}
	}
	if sc.Stats {
		// An INSERT makes its request_logs part visible before the materialized
		// views' parts: give the rollup a moment to show the same block.
		start := time.Now()
		waitFor(30*time.Second, func() bool {
			err := env.CH.QueryRow(ctx, fmt.Sprintf("SELECT toUInt64(sum(total_requests)) FROM %s.system_stats", env.Database)).Scan(&a.StatsTotal)
			return err == nil && a.StatsTotal >= uniq
		})
		if wait := time.Since(start); wait > time.Second {
			t.Logf("system_stats caught up with request_logs after %s (%d of %d)", wait.Round(100*time.Millisecond), a.StatsTotal, uniq)
		}
		if err := env.CH.QueryRow(ctx, fmt.Sprintf("SELECT toUInt64(sum(total_requests)) FROM %s.system_stats", env.Database)).Scan(&a.StatsTotal); err != nil {
			t.Fatalf("system_stats: %v", err)
		}
		if a.StatsTotal > uniq {
			a.Duplicated += int(a.StatsTotal - uniq)
		}
		if a.StatsTotal != uniq {
			t.Errorf("system_stats counts %d requests, request_logs holds %d", a.StatsTotal, uniq)
		}
	}
	a.OutOfOrder = checkOrder(evs, results)
	return a
}

// checkOrder verifies that each worker's events appear in each partition in the order
// the worker sent its requests (first copies only: a retried batch may repeat events
// later, which the sinks drop).
func checkOrder(evs []topicEvent, results []result) []string {
	type pos struct{ worker, seq int }
	byID := map[string]pos{}
	for _, r := range results {
		if r.RequestID != "" {
			byID[r.RequestID] = pos{r.Worker, r.Seq}
		}
	}
	seen := map[string]bool{}
	last := map[[2]int]int{} // (partition, worker) -> last seq
	var bad []string
	for _, te := range evs {
		if seen[te.Event.EventID] {
			continue
		}
		seen[te.Event.EventID] = true
		p, ok := byID[te.Event.RequestID]
		if !ok {
			continue
		}
		k := [2]int{te.Partition, p.worker}
		if prev, ok := last[k]; ok && p.seq <= prev {
			bad = append(bad, fmt.Sprintf("partition %d offset %d: worker %d seq %d after seq %d", te.Partition, te.Offset, p.worker, p.seq, prev))
		}
		last[k] = p.seq
	}
	return bad
}

// waitProcessing waits until the processors have stored at least n request rows: their
// setup (topics, migrations) is done and the consumer runs. Their /health/ready turns
// 200 before that, so a fault injected right after the Env starts could hit the setup
// instead of the steady state the scenario is about.
func waitProcessing(t *testing.T, env *e2e.Env, n uint64) {
	t.Helper()
	var got uint64
	ok := waitFor(60*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := env.CH.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.request_logs", env.Database)).Scan(&got)
		return err == nil && got >= n
	})
	if !ok {
		t.Fatalf("the processors stored %d rows, want %d before the fault", got, n)
	}
}

// noPanic fails the test when a binary's output mentions a panic.
func noPanic(t *testing.T, procs ...*e2e.Proc) {
	t.Helper()
	for _, p := range procs {
		if p != nil && strings.Contains(strings.ToLower(p.Output()), "panic") {
			i := strings.Index(strings.ToLower(p.Output()), "panic")
			t.Errorf("%s printed a panic: %.600s", p.Name, p.Output()[max(i-200, 0):])
		}
	}
}

func countServed(rs []result) int {
	n := 0
	for _, r := range rs {
		if r.served() {
			n++
		}
	}
	return n
}

func statusCounts(rs []result) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		k := strconv.Itoa(r.Status)
		if r.Err != nil {
			k = "error"
		} else if r.Status/100 == 2 && !r.Complete {
			k += "-incomplete"
		}
		m[k]++
	}
	return m
}
