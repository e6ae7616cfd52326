//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/processors/replay"
	"github.com/geminicodeapi/gca/processors/statesink"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// The replay tests run live traffic through the ingress into the processors, destroy
// derived state the way incidents do, and rebuild it with the processors binary's
// `replay` and `check` commands, comparing what an operator would compare.

const replayAdminToken = "replay-admin-" + "0123456789abcdef"

func startReplayEnv(t *testing.T) *poolEnv {
	t.Helper()
	opts := poolOptions(3, nil)
	opts.ProcessorsEnv = []string{"GCA_ADMIN_TOKEN=" + replayAdminToken}
	// The disabled key must stay disabled while the test compares states: no
	// revalidation probe may enable it in between.
	opts.IngressEnv = []string{"GCA_REVALIDATE_EVERY=1h"}
	return startPool(t, opts)
}

// traffic sends requests that leave every kind of derived state: counters of two models
// (minute and day), a day cool-down (it holds until Pacific midnight, so it outlives
// the test), upstream failures (key health, failure sets), a disabled key, a refused
// request (error_logs). It returns when the processors have consumed everything.
func (p *poolEnv) traffic(n int) {
	p.t.Helper()
	p.warm(p.Token)
	p.generateOK(n, flash)
	p.generateOK(n/2, warmModel)
	p.injectFault(p.project(1).ID, gemsim.Fault{Status: http.StatusTooManyRequests, Quota: "rpd"}, 1)
	p.untilFaultsUsed(flash, 20)
	p.waitCooldown(p.project(1).ID, flash)
	p.injectFault(p.project(2).ID, gemsim.Fault{Status: http.StatusServiceUnavailable}, 2)
	p.untilFaultsUsed(flash, 20)
	hash := schemas.HashKey(p.project(0).Keys[1])
	require.Equal(p.t, http.StatusAccepted, p.admin(http.MethodPost, "/keys/"+hash+"/disable", nil))
	require.Eventually(p.t, func() bool { return p.blacklist(p.project(0).ID, hash) != nil }, 30*time.Second, 50*time.Millisecond)
	p.generateOK(4, flash)
	// A request refused by the gateway: an error row in ClickHouse.
	require.Equal(p.t, http.StatusUnauthorized, p.generateAs(0, flash, "gca_not-a-token").status)
	start := time.Now()
	p.waitConsumed()
	p.t.Logf("traffic consumed %s after the last request", time.Since(start).Round(time.Millisecond))
}

// groups are the processors' consumer groups in an Env (see Env.NewProcessors).
func (p *poolEnv) groups() (clickhouse, valkey string) { return p.Database + "-ch", p.Database + "-vk" }

// waitConsumed waits until both consumer groups have committed every record.
func (p *poolEnv) waitConsumed() {
	p.t.Helper()
	ch, vk := p.groups()
	c := &kafka.Client{Addr: kafka.TCP(testenv.KafkaBrokers()...), Timeout: 10 * time.Second}
	topics := []string{p.Topics.Requests, p.Topics.KeyState, p.Topics.Audit}
	require.Eventually(p.t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
		if err != nil {
			return false
		}
		parts := map[string][]int{}
		ends := map[string][]kafka.OffsetRequest{}
		for _, t := range md.Topics {
			for _, pt := range t.Partitions {
				parts[t.Name] = append(parts[t.Name], pt.ID)
				ends[t.Name] = append(ends[t.Name], kafka.LastOffsetOf(pt.ID))
			}
		}
		hw, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: ends})
		if err != nil {
			return false
		}
		for _, g := range []string{ch, vk} {
			got, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: g, Topics: parts})
			if err != nil {
				return false
			}
			at := map[string]map[int]int64{}
			for t, ps := range got.Topics {
				at[t] = map[int]int64{}
				for _, pt := range ps {
					at[t][pt.Partition] = pt.CommittedOffset
				}
			}
			for t, ps := range hw.Topics {
				for _, pt := range ps {
					if pt.LastOffset > 0 && at[t][pt.Partition] < pt.LastOffset {
						return false
					}
				}
			}
		}
		return true
	}, 60*time.Second, 100*time.Millisecond, "the processors consume every record")
}

// processors runs `processors args...` against the Env and returns its output and
// whether it succeeded.
func (p *poolEnv) processors(args ...string) (string, error) {
	p.t.Helper()
	return p.RunProcessors(5*time.Minute, args...)
}

// derived is the live Valkey state the processors derive from events: no applied marks,
// no pending reservations, no token counters.
func (p *poolEnv) derived() map[string]statesink.Value {
	p.t.Helper()
	s, err := statesink.NewReader(p.VK, p.keys).Snapshot(context.Background())
	require.NoError(p.t, err)
	return replay.Derived(s)
}

// lasting drops the keys that expire within margin: a window that ends while the test
// runs is gone from the state before and after alike, or from one of them.
func lasting(state map[string]statesink.Value, margin time.Duration) map[string]statesink.Value {
	cut := time.Now().Add(margin).UnixMilli()
	out := map[string]statesink.Value{}
	for k, v := range state {
		if v.ExpireAtMs == 0 || v.ExpireAtMs > cut {
			out[k] = v
		}
	}
	return out
}

// requireSameState compares two states key by key, values and expiries within a
// second, leaving out the windows that end within a few seconds.
func requireSameState(t *testing.T, want, got map[string]statesink.Value) {
	t.Helper()
	require.Empty(t, statesink.Diff(lasting(want, 3*time.Second), lasting(got, 3*time.Second), time.Second))
}

// kinds counts keys by kind ("rpm", "cooldown", ...), to show the test covers them.
func kinds(state map[string]statesink.Value) map[string]int {
	out := map[string]int{}
	for k := range state {
		_, rest, _ := strings.Cut(k, "}:")
		kind, _, _ := strings.Cut(rest, ":")
		out[kind]++
	}
	return out
}

// TestReplayRebuildsFlushedValkey: Valkey loses the processors' state (every key of
// the prefix deleted); a replay in place, and then a fresh replay with a switch,
// rebuild exactly the state there was — the same keys, values, and expiries within a
// second — from the topics.
func TestReplayRebuildsFlushedValkey(t *testing.T) {
	t.Parallel()
	p := startReplayEnv(t)
	p.traffic(30)
	before := p.derived()
	t.Logf("state before the flush: %d keys %v", len(before), kinds(before))
	for _, kind := range []string{"rpm", "tpm", "rpd", "cooldown", "blacklist", "health", "fails"} {
		require.Positive(t, kinds(before)[kind], "the traffic left %s keys", kind)
	}

	testenv.DeleteKeys(p.VK, p.Prefix+"*")
	require.Empty(t, p.derived())
	_, err := p.processors("replay", "-target", "valkey", "-into", "inplace", "-from", "beginning")
	require.NoError(t, err)
	requireSameState(t, before, p.derived())

	testenv.DeleteKeys(p.VK, p.Prefix+"*")
	out, err := p.processors("replay", "-target", "valkey", "-into", "fresh", "-from", "beginning", "-id", "flushed", "-switch")
	require.NoError(t, err)
	require.Contains(t, out, "switched to replay flushed")
	requireSameState(t, before, p.derived())
	require.Empty(t, p.scan("*replay*"), "nothing of the fresh prefix is left")

	// The gateway goes on counting on the rebuilt state, each event once.
	p.generateOK(6, flash)
	p.waitConsumed()
	_, err = p.processors("check")
	require.NoError(t, err, "the live state matches the events after the rebuild")
}

// tables is what an analyst sees of the ClickHouse tables.
type tables struct {
	Rows, Distinct                           uint64
	Input, Output, Total, Latency, Req, Resp uint64
	Errors                                   uint64
	Stats, Keys                              string
}

func (p *poolEnv) tables() tables {
	p.t.Helper()
	ctx := context.Background()
	var s tables
	db := "`" + p.Database + "`"
	require.NoError(p.t, p.CH.QueryRow(ctx, `SELECT count(), uniqExact(id), sum(input_tokens), sum(output_tokens), sum(total_tokens),
		sum(toUInt64(response_time)), sum(request_size), sum(response_size) FROM `+db+`.request_logs`).
		Scan(&s.Rows, &s.Distinct, &s.Input, &s.Output, &s.Total, &s.Latency, &s.Req, &s.Resp))
	require.NoError(p.t, p.CH.QueryRow(ctx, `SELECT uniqExact(id) FROM `+db+`.error_logs`).Scan(&s.Errors))
	s.Stats = p.rowsText("SELECT * FROM " + db + ".system_stats ORDER BY date")
	s.Keys = p.rowsText("SELECT * FROM " + db + ".api_key_metrics ORDER BY key_hash")
	return s
}

// rowsText renders a query's rows, a line per row, for comparison.
func (p *poolEnv) rowsText(query string) string {
	p.t.Helper()
	rows, err := p.CH.Query(context.Background(), query)
	require.NoError(p.t, err)
	defer func() { _ = rows.Close() }()
	cols := rows.ColumnTypes()
	var out []string
	for rows.Next() {
		ptrs := make([]any, len(cols))
		for i, c := range cols {
			ptrs[i] = reflect.New(c.ScanType()).Interface()
		}
		require.NoError(p.t, rows.Scan(ptrs...))
		vals := make([]string, len(ptrs))
		for i, v := range ptrs {
			vals[i] = fmt.Sprint(reflect.ValueOf(v).Elem().Interface())
		}
		out = append(out, strings.Join(vals, "|"))
	}
	require.NoError(p.t, rows.Err())
	return strings.Join(out, "\n")
}

// TestReplayRestoresDroppedRequestLogs: request_logs is dropped. The rollups
// (system_stats, api_key_metrics, error_logs) still count every request, so replaying
// into the live table would count them all again: an attach replay restores the rows
// from the topics into request_logs without firing the materialized views. Row counts,
// sums and rollups equal what they were. Then the same with traffic going on while the
// table is missing: the live consumer waits, and once the table is back it writes the
// new requests, which the rollups count once.
func TestReplayRestoresDroppedRequestLogs(t *testing.T) {
	t.Parallel()
	p := startReplayEnv(t)
	p.traffic(30)
	before := p.tables()
	require.Positive(t, before.Errors)
	db := "`" + p.Database + "`"

	require.NoError(t, p.CH.Exec(context.Background(), "DROP TABLE "+db+".request_logs"))
	out, err := p.processors("replay", "-target", "clickhouse", "-into", "fresh", "-from", "beginning", "-id", "lost", "-attach", "request_logs")
	require.NoError(t, err)
	require.Contains(t, out, "partitions of request_logs attached")
	require.Equal(t, before, p.tables())

	// Traffic while the table is gone: the live consumer retries its batch.
	require.NoError(t, p.CH.Exec(context.Background(), "DROP TABLE "+db+".request_logs"))
	const more = 12
	p.generateOK(more, flash)
	_, err = p.processors("replay", "-target", "clickhouse", "-into", "fresh", "-from", "beginning", "-id", "lost2", "-attach", "request_logs")
	require.NoError(t, err)
	p.waitConsumed()
	require.NoError(t, p.CH.Exec(context.Background(), "OPTIMIZE TABLE "+db+".request_logs FINAL"))
	after := p.tables()
	require.Equal(t, before.Distinct+more, after.Distinct)
	require.Equal(t, after.Distinct, after.Rows, "one row per event")
	var statsTotal, keyTotal, attempts uint64
	ctx := context.Background()
	require.NoError(t, p.CH.QueryRow(ctx, "SELECT toUInt64(sum(total_requests)) FROM "+db+".system_stats").Scan(&statsTotal))
	require.NoError(t, p.CH.QueryRow(ctx, "SELECT toUInt64(sum(total_requests)) FROM "+db+".api_key_metrics").Scan(&keyTotal))
	require.NoError(t, p.CH.QueryRow(ctx, "SELECT toUInt64(sum(length(attempts.key_hash))) FROM "+db+".request_logs").Scan(&attempts))
	require.Equal(t, after.Distinct, statsTotal, "system_stats counts every request once")
	require.Equal(t, attempts, keyTotal, "api_key_metrics counts every attempt once")
}

// TestConsistencyCheck: on a healthy system the check finds nothing; after the test
// corrupts a counter, deletes a cool-down and adds a stray key, it reports exactly those
// three, on the command line and on the processors' admin endpoint; the repair fixes
// them and is recorded on the audit topic.
func TestConsistencyCheck(t *testing.T) {
	t.Parallel()
	p := startReplayEnv(t)
	p.traffic(20)
	report := func(args ...string) (*replay.Report, error) {
		out, err := p.processors(append([]string{"check", "-json"}, args...)...)
		i := strings.Index(out, "{")
		require.GreaterOrEqual(t, i, 0, "a JSON report: %s", out)
		var rep replay.Report
		require.NoError(t, json.NewDecoder(strings.NewReader(out[i:])).Decode(&rep))
		return &rep, err
	}
	rep, err := report()
	require.NoError(t, err)
	require.Empty(t, rep.Differences)
	require.Positive(t, rep.LiveKeys)
	require.Equal(t, rep.LiveKeys, rep.ExpectedKeys)

	ctx := context.Background()
	vk := p.VK
	hot := p.project(0).ID
	counter := p.keys.DayRequests(hot, flash, schemas.PacificDay(time.Now()))
	require.Positive(t, p.counter(counter))
	require.NoError(t, vk.Do(ctx, vk.B().Incrby().Key(counter).Increment(5).Build()).Error())
	cooldown := p.keys.Cooldown(p.project(1).ID, flash)
	require.NoError(t, vk.Do(ctx, vk.B().Del().Key(cooldown).Build()).Error())
	stray := p.keys.Cooldown(p.project(2).ID, "gemini-2.0-flash")
	require.NoError(t, vk.Do(ctx, vk.B().Set().Key(stray).Value(`{"reason":"planted"}`).Px(10*time.Minute).Build()).Error())
	planted := map[string]string{
		strings.TrimPrefix(counter, p.Prefix):  "value",
		strings.TrimPrefix(cooldown, p.Prefix): "missing",
		strings.TrimPrefix(stray, p.Prefix):    "unexpected",
	}
	found := func(rep *replay.Report) map[string]string {
		out := map[string]string{}
		for _, f := range rep.Differences {
			out[f.Key] = f.Problem
		}
		return out
	}

	rep, err = report()
	require.Error(t, err, "differences make the command fail")
	require.Equal(t, planted, found(rep))
	for _, f := range rep.Differences {
		require.NotEmpty(t, f.Project)
		require.NotEmpty(t, f.Kind)
	}

	// The admin endpoint: the token is required, the report is the same.
	admin := func(method, query, token string) (int, *replay.Report) {
		req, err := http.NewRequest(method, "http://"+p.Processors.Addr+"/admin/check"+query, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		var rep replay.Report
		if resp.StatusCode == http.StatusOK {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&rep))
		}
		return resp.StatusCode, &rep
	}
	status, _ := admin(http.MethodGet, "", "")
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = admin(http.MethodGet, "", "wrong")
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = admin(http.MethodGet, "?repair=1", replayAdminToken)
	require.Equal(t, http.StatusMethodNotAllowed, status, "a repair is a POST")
	status, got := admin(http.MethodGet, "", replayAdminToken)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, planted, found(got))

	// Repair on the command line; the admin endpoint then finds nothing to repair.
	rep, err = report("-repair")
	require.NoError(t, err)
	require.Equal(t, 3, rep.Repaired)
	status, got = admin(http.MethodPost, "?repair=1", replayAdminToken)
	require.Equal(t, http.StatusOK, status)
	require.Empty(t, got.Differences)
	require.Zero(t, got.Repaired)
	rep, err = report()
	require.NoError(t, err)
	require.Empty(t, rep.Differences)
	require.Equal(t, int64(0), p.counter(stray))
	e, _ := p.cooldown(p.project(1).ID, flash)
	require.NotNil(t, e, "the cool-down is back")

	// The repair is on the audit topic, and the processors wrote it to audit_log.
	audits := readAudits(t, p.Topics.Audit)
	var repairs []schemas.AuditEvent
	for _, a := range audits {
		if a.Action == "consistency_repair" {
			repairs = append(repairs, a)
		}
	}
	require.Len(t, repairs, 1)
	require.Equal(t, "3", repairs[0].Params["fixed"])
	require.Equal(t, "valkey:"+p.Prefix, repairs[0].Target)
	n, err := p.WaitCount("SELECT count() FROM {db}.audit_log WHERE action = 'consistency_repair'", 1, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, uint64(1), n)
}

// readAudits reads every event of the audit topic.
func readAudits(t *testing.T, topic string) []schemas.AuditEvent {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: testenv.KafkaBrokers(), Topic: topic, Partition: 0, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
	defer func() { _ = r.Close() }()
	var out []schemas.AuditEvent
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		m, err := r.ReadMessage(ctx)
		cancel()
		if err != nil {
			return out
		}
		var e schemas.AuditEvent
		require.NoError(t, json.Unmarshal(m.Value, &e))
		out = append(out, e)
	}
}
