//go:build integration

package queries_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/processors/chsink"
	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/queries"
	"github.com/geminicodeapi/gca/queries/chdbtest"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

var queriesRun = queries.Run

// Every query, run on the local 18.16 server over a database loaded with generated
// events, returns exactly what the events say it must; then the same files run on the
// current engine (chdb) over the same rows and must agree.
func TestQueries(t *testing.T) {
	start := time.Now()
	f := newFixture(t, 3000)
	t.Logf("fixture: %d requests (%d stored twice), %d key states, %d audits loaded in %s",
		len(f.requests), len(f.dups), len(f.states), len(f.audits), time.Since(start).Round(time.Millisecond))
	var cases []chdbtest.Case
	covered := map[string]bool{}
	check := func(t *testing.T, name string, params map[string]string, want [][]string, blanks ...int) {
		t.Helper()
		got := f.run(t, name, params)
		// The current engine runs over the same rows and must return the same. Data
		// parts differ there (it loads each table in one insert): the storage cases
		// add their own, on the columns the parts do not decide.
		if !strings.HasPrefix(name, "storage_") {
			cases = append(cases, chdbtest.Case{Query: name, Params: params, Want: clone(got)})
		}
		got = blank(got, blanks...)
		if want == nil {
			want = [][]string{}
		}
		if got == nil {
			got = [][]string{}
		}
		require.Equal(t, want, got, "%s %v", name, params)
		covered[name] = true
	}
	day := func(d int) time.Time { return fixtureStart.AddDate(0, 0, d) }
	all := map[string]string{"from": "2025-03-01", "to": "2025-04-01"}
	stored := f.stored()

	t.Run("quota_usage", func(t *testing.T) {
		// Both minutes around Pacific midnight; the 24- and 23-hour Pacific days; a day
		// that starts before the data; filters.
		proj, k, model := f.requests[7].Attempts[0].Project, f.requests[7].Attempts[0].KeyHash, "gemini-2.5-flash"
		for _, tc := range []struct {
			window              string
			at                  time.Time
			project, key, model string
		}{
			{"minute", time.Date(2025, 3, 9, 7, 59, 30, 0, time.UTC), "", "", ""},
			{"minute", time.Date(2025, 3, 9, 8, 0, 0, 0, time.UTC), "", "", ""},
			{"minute", time.Date(2025, 3, 9, 8, 0, 59, 0, time.UTC), "", "", model},
			{"day", time.Date(2025, 3, 9, 12, 0, 0, 0, time.UTC), "", "", ""},
			{"day", time.Date(2025, 3, 10, 6, 59, 59, 0, time.UTC), proj, "", ""},
			{"day", time.Date(2025, 3, 10, 7, 0, 0, 0, time.UTC), "", k, ""},
			{"day", time.Date(2025, 3, 8, 3, 0, 0, 0, time.UTC), "", "", model},
		} {
			want := expectQuotaUsage(f.requests, tc.window, tc.at, tc.project, tc.key, tc.model)
			require.NotEmpty(t, want, "case %v has data", tc)
			check(t, "quota_usage", map[string]string{"quota_window": tc.window, "at": tc.at.Format(time.RFC3339),
				"project": tc.project, "key_hash": tc.key, "model": tc.model}, want)
		}
	})
	t.Run("system_stats", func(t *testing.T) {
		check(t, "system_stats", map[string]string{"from": "2025-03-01", "to": "2025-03-31"}, expectSystemStats(stored, day(-7), day(23)))
		check(t, "system_stats", map[string]string{"from": "2025-03-09", "to": "2025-03-09"}, expectSystemStats(stored, day(1), day(1)))
	})
	metrics := expectKeyMetrics(stored, f.states)
	t.Run("key_metrics", func(t *testing.T) {
		check(t, "key_metrics", nil, expectKeyMetricsRows(metrics, ""))
		check(t, "key_metrics", map[string]string{"key_hash": metrics[3].hash}, expectKeyMetricsRows(metrics, metrics[3].hash))
	})
	t.Run("key_health_ranking", func(t *testing.T) {
		check(t, "key_health_ranking", nil, expectKeyHealthRanking(metrics, 1, 100))
		check(t, "key_health_ranking", map[string]string{"min_requests": "300", "limit": "5"}, expectKeyHealthRanking(metrics, 300, 5))
	})
	t.Run("error_breakdown", func(t *testing.T) {
		check(t, "error_breakdown", all, expectErrorBreakdown(f.requests, day(-7), day(24), ""))
		check(t, "error_breakdown", map[string]string{"from": "2025-03-09T06:00:00Z", "to": "2025-03-09T18:00:00Z", "model": "gemini-2.5-pro"},
			expectErrorBreakdown(f.requests, day(1).Add(6*time.Hour), day(1).Add(18*time.Hour), "gemini-2.5-pro"))
	})
	t.Run("latency_percentiles", func(t *testing.T) {
		check(t, "latency_percentiles", all, expectLatency(f.requests, day(-7), day(24), false))
		check(t, "latency_percentiles", map[string]string{"from": "2025-03-09", "to": "2025-03-10", "include_errors": "1"},
			expectLatency(f.requests, day(1), day(2), true))
	})
	t.Run("token_usage", func(t *testing.T) {
		check(t, "token_usage", all, expectTokenUsage(f.requests, day(-7), day(24), ""))
		check(t, "token_usage", map[string]string{"from": "2025-03-08T12:00:00Z", "to": "2025-03-10T12:00:00Z", "model": "gemini-2.5-flash"},
			expectTokenUsage(f.requests, day(0).Add(12*time.Hour), day(2).Add(12*time.Hour), "gemini-2.5-flash"))
	})
	t.Run("top_clients", func(t *testing.T) {
		check(t, "top_clients", all, expectTopClients(f.requests, day(-7), day(24), 20))
		check(t, "top_clients", map[string]string{"from": "2025-03-09", "to": "2025-03-10", "limit": "3"}, expectTopClients(f.requests, day(1), day(2), 3))
	})
	t.Run("rate_limit_timeline", func(t *testing.T) {
		check(t, "rate_limit_timeline", all, expectRateLimits(f.requests, day(-7), day(24), 60, "", ""))
		// A window that starts mid-hour and a 7-minute bucket (not aligned to hours).
		from, to := time.Date(2025, 3, 9, 7, 58, 30, 0, time.UTC), time.Date(2025, 3, 9, 8, 1, 10, 0, time.UTC)
		check(t, "rate_limit_timeline", map[string]string{"from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339), "bucket_minutes": "7"},
			expectRateLimits(f.requests, from, to, 7, "", ""))
		check(t, "rate_limit_timeline", map[string]string{"from": "2025-03-08", "to": "2025-03-11", "bucket_minutes": "1440", "project": "proj-2", "model": "gemini-2.5-pro"},
			expectRateLimits(f.requests, day(0), day(3), 1440, "proj-2", "gemini-2.5-pro"))
	})
	t.Run("stream_interruptions", func(t *testing.T) {
		check(t, "stream_interruptions", all, expectStreamInterruptions(f.requests, day(-7), day(24)))
		check(t, "stream_interruptions", map[string]string{"from": "2025-03-10", "to": "2025-03-10T12:00:00Z"},
			expectStreamInterruptions(f.requests, day(2), day(2).Add(12*time.Hour)))
	})
	t.Run("duplicates", func(t *testing.T) {
		// The rows stored twice are there until a merge; every other query read them once.
		n, d := uint64(len(f.requests)+len(f.dups)), uint64(len(f.requests))
		check(t, "duplicates", all, [][]string{{u(n), u(d), u(n - d)}})
		var errs, errDups uint64
		for _, e := range f.requests {
			if e.HasError() {
				errs++
			}
		}
		for _, e := range f.dups {
			if e.HasError() {
				errDups++
			}
		}
		check(t, "duplicates", map[string]string{"table": "error_logs", "from": "2025-03-01", "to": "2025-04-01"},
			[][]string{{u(errs + errDups), u(errs), u(errDups)}})
		check(t, "duplicates", map[string]string{"table": "key_state_log", "from": "2025-03-01", "to": "2025-04-01"},
			[][]string{{u(uint64(len(f.states))), u(uint64(len(f.states))), "0"}})
	})

	parts := f.expectParts()
	t.Run("storage_metrics", func(t *testing.T) {
		tables := map[string]string{}
		rows, err := f.conn.Query(testenv.Context(t), fmt.Sprintf("SELECT name, engine FROM system.tables WHERE database = '%s'", f.db))
		require.NoError(t, err)
		for rows.Next() {
			var n, e string
			require.NoError(t, rows.Scan(&n, &e))
			tables[n] = e
		}
		require.NoError(t, rows.Err())
		want := expectStorageMetrics(parts, tables)
		got := f.run(t, "storage_metrics", nil)
		for i, r := range want {
			for j, c := range r {
				if c == "*" {
					got[i][j] = "*"
				}
			}
		}
		require.Equal(t, want, got)
		covered["storage_metrics"] = true
		// On the current engine an aggregating table's rows count its inserts until
		// merged ("*": not compared); the other tables' rows are the events'.
		current := f.run(t, "storage_metrics", nil)
		for _, r := range current {
			if r[1] == "AggregatingMergeTree" {
				r[2] = "*"
			}
		}
		cases = append(cases, chdbtest.Case{Query: "storage_metrics", Params: map[string]string{}, Want: current,
			Columns: []string{"table_name", "engine", "rows", "partitions", "oldest_partition", "newest_partition"}})
	})
	t.Run("storage_recommendations", func(t *testing.T) {
		// March 8 and 9 are past a 30-day retention on April 9 noon, March 10 is not;
		// the monthly tables are not. Partitions with more than 2 parts are to optimize.
		now := time.Date(2025, 4, 9, 12, 0, 0, 0, time.UTC)
		params := map[string]string{"now": now.Format(time.RFC3339), "max_parts": "2"}
		want := expectRecommendations(f.db, parts, now, 30, 730, 2)
		require.NotEmpty(t, want)
		check(t, "storage_recommendations", params, want, 7)
		check(t, "storage_recommendations", map[string]string{"now": "2027-06-01T00:00:00Z", "retention_days": "0", "stats_retention_days": "800", "max_parts": "100000"},
			expectRecommendations(f.db, parts, time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC), 0, 800, 100000), 7)
		// On the current engine the parts differ (it loads each table in one insert);
		// the partitions to drop do not.
		p := map[string]string{"now": "2025-04-10T00:00:00Z", "max_parts": "100000"}
		cases = append(cases, chdbtest.Case{Query: "storage_recommendations", Params: p, Want: f.run(t, "storage_recommendations", p),
			Columns: []string{"action", "priority", "database", "table_name", "partition_id", "rows", "description", "statement"}})
	})

	for _, q := range queries.List() {
		require.True(t, covered[q.Name], "query %s has no test against known events", q.Name)
	}

	t.Run("current_engine", func(t *testing.T) {
		runOnCurrentEngine(t, f, cases)
	})
}

// runOnCurrentEngine copies the fixture's stored rows (request_logs with its
// duplicates, key_state_log, audit_log; the views derive the rest) to the current
// engine, in process through chdb, and runs every case there: once as the file is,
// with native query parameters, and once with the literals Render binds. Both must
// return what 18.16 returned. chdb-go loads libchdb.so when its package initialises and
// panics without it, so the check runs in a child `go test` of queries/chdbtest.
func runOnCurrentEngine(t *testing.T, f *fixture, cases []chdbtest.Case) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("libchdb is packaged for linux/amd64 only")
	}
	ctx := testenv.Context(t)
	in := chdbtest.Input{Database: f.db, Cases: cases}
	dups := make([]string, len(f.dups))
	for i, e := range f.dups {
		dups[i] = "'" + e.EventID + "'"
	}
	// request_logs in two inserts, as the fixture stored it: each event once, then the
	// duplicated ones again (one insert of both would be collapsed on insert by
	// current servers' optimize_on_insert, which 18.16 lacks).
	for _, q := range []struct{ table, where string }{
		{"request_logs", ""},
		{"request_logs", "WHERE id IN (" + strings.Join(dups, ", ") + ")"},
		{"key_state_log", ""},
		{"audit_log", ""},
	} {
		res, err := queries.RunSQL(ctx, f.conn, q.table, fmt.Sprintf("SELECT * FROM `%s`.`%s` FINAL %s ORDER BY timestamp, id", f.db, q.table, q.where))
		require.NoError(t, err)
		in.Inserts = append(in.Inserts, chdbtest.InsertStatement(f.db, q.table, res))
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "cases.json")
	b, err := json.Marshal(in)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	// The child also checks string escaping and README.md's column lists there.
	runChdb(t, "TestCases|TestEscaping|TestREADME", path)
}

// runChdb runs tests of queries/chdbtest in a child `go test` with libchdb.
func runChdb(t *testing.T, run, casesPath string) {
	t.Helper()
	root := repoRoot(t)
	lib := os.Getenv("CHDB_LIB_PATH")
	if lib == "" {
		out, err := exec.Command(filepath.Join(root, "deploy", "local", "chdb.sh")).Output()
		require.NoError(t, err, "install libchdb with deploy/local/chdb.sh")
		lib = strings.TrimSpace(string(out))
	}
	args := []string{"test", "-tags", "chdb", "-count=1", "-run", "^(" + run + ")$", "-v", "./queries/chdbtest/"}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CHDB_LIB_PATH="+lib, chdbtest.CasesEnv+"="+casesPath)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("go %s (%s)\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	require.NoError(t, err, "queries on the current engine")
}

func clone(rows [][]string) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = append([]string(nil), r...)
	}
	return out
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.mod above the test")
		dir = parent
	}
}

// A hostile string bound as a parameter reaches the server as that string: the query
// returns it unchanged, and nothing else ran.
func TestEscapingOnServer(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	fsys := map[string]string{"echo": "-- Echo a value.\n--\n-- Test.\n--\n-- @param s String '' the value\n-- @example --param s=x\nSELECT {s:String} AS s, length({s:String}) AS n"}
	c := catalogOf(t, fsys)
	for _, v := range append(hostileValues(), strings.Repeat(`\'`, 300)) {
		res, err := c.Run(ctx, conn, "echo", map[string]string{"s": v})
		require.NoError(t, err, "%q", v)
		require.Equal(t, [][]any{{v, uint64(len(v))}}, res.Rows, "%q", v)
	}
}

func hostileValues() []string {
	return []string{`'`, `\`, `\'`, `\\'`, `' OR '1'='1`, `'; DROP TABLE request_logs; --`, `\' OR 1=1 --`,
		"a\nb\r\nc\td", "nul\x00byte", "bell\x07 del\x7f", `{s:String}`, `/* c */ --`, "`b` \"d\"", "😀 ñ 日本", `\x27 \047`}
}

// The storage optimizer drops the expired partitions and merges the ones with too many
// parts, and describes each action as an audit event that lands in audit_log.
func TestStorageOptimizer(t *testing.T) {
	conn, db := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	opts := chddl.Options{Database: db, RetentionDays: 30, StatsRetentionDays: 730}
	require.NoError(t, chddl.Migrate(ctx, conn, opts))
	v, err := chddl.ServerVersion(ctx, conn)
	require.NoError(t, err)
	for _, tbl := range mergeTreeTables {
		require.NoError(t, conn.Exec(ctx, fmt.Sprintf("SYSTEM STOP MERGES `%s`.`%s`", db, tbl)))
	}
	sink := chsink.New(conn, v, opts, chsink.NewMetrics(prometheus.NewRegistry()))
	g := newGen(7)
	// Three inserts on March 1 (to be dropped on April 9) and three on April 8 (three
	// parts: to be optimized).
	for _, d := range []time.Time{time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), time.Date(2025, 4, 8, 10, 0, 0, 0, time.UTC)} {
		for i := range 3 {
			var b consume.Batch
			for j := range 20 {
				b.Requests = append(b.Requests, g.request(d.UnixMilli()+int64(i*20+j)*60_000))
			}
			require.NoError(t, sink.Write(ctx, &b))
		}
	}
	cat, err := queries.Builtin()
	require.NoError(t, err)
	params := map[string]string{"now": "2025-04-09T12:00:00Z", "max_parts": "2"}
	recs, err := cat.Recommendations(ctx, conn, params)
	require.NoError(t, err)
	got := map[string]string{}
	for _, r := range recs {
		got[r.Table+"/"+r.PartitionID] = r.Action
	}
	require.Equal(t, "drop_partition", got["request_logs/20250301"])
	require.Equal(t, "optimize_partition", got["request_logs/20250408"])
	require.Equal(t, "optimize_partition", got["api_key_metrics_state/all"], "six inserts, one unpartitioned table")

	// SYSTEM STOP MERGES stops OPTIMIZE too: start them again, as they run normally.
	for _, tbl := range mergeTreeTables {
		require.NoError(t, conn.Exec(ctx, fmt.Sprintf("SYSTEM START MERGES `%s`.`%s`", db, tbl)))
	}
	rec := &recorder{now: func() time.Time { return time.Date(2025, 4, 9, 12, 0, 0, 0, time.UTC) }}
	opt := &queries.Optimizer{Conn: conn, Audit: rec, Actor: "sre@example.com"}
	outcomes, err := opt.Execute(ctx, recs)
	require.NoError(t, err)
	require.Len(t, outcomes, len(recs))
	for _, oc := range outcomes {
		require.NotNil(t, oc.Audit)
		require.Equal(t, "ok", oc.Audit.Result)
		require.Equal(t, oc.Recommendation.Statement, oc.Statement, "the statement built from the checked fields is the one the query shows")
		require.Equal(t, oc.Statement, oc.Audit.Params["statement"])
	}
	audits := rec.events
	after, err := cat.Recommendations(ctx, conn, params)
	require.NoError(t, err)
	require.Empty(t, after, "nothing left to do")

	var march, april, parts uint64
	require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf(
		"SELECT countIf(toYYYYMM(timestamp) = 202503), countIf(toYYYYMM(timestamp) = 202504), (SELECT count() FROM system.parts WHERE database = '%[1]s' AND table = 'request_logs' AND active) FROM `%[1]s`.request_logs", db)).
		Scan(&march, &april, &parts))
	require.Equal(t, []uint64{0, 60, 1}, []uint64{march, april, parts})

	// The audit events, written the way the processors write events, land in audit_log.
	require.NoError(t, sink.Write(ctx, &consume.Batch{Audits: audits}))
	res, err := queries.RunSQL(ctx, conn, "audit", fmt.Sprintf("SELECT action, target, result FROM `%s`.audit_log ORDER BY target", db))
	require.NoError(t, err)
	var want [][]string
	for _, r := range recs {
		a := queries.AuditOptimizePartition
		if r.Action == queries.ActionDropPartition {
			a = queries.AuditDropPartition
		}
		want = append(want, []string{a, db + "." + r.Table + "/" + r.PartitionID, "ok"})
	}
	sort.Slice(want, func(i, j int) bool { return want[i][1] < want[j][1] })
	require.Equal(t, want, res.Strings())

	// A row naming a table or partition outside the project's is refused, never run.
	_, err = queries.StorageStatement(queries.Recommendation{Action: queries.ActionDropPartition, Database: db, Table: "audit_log", PartitionID: "202503"}, "")
	require.ErrorIs(t, err, queries.ErrNotAllowed)
	_, err = queries.StorageStatement(queries.Recommendation{Action: queries.ActionDropPartition, Database: db, Table: "request_logs", PartitionID: "2025' OR '1"}, "")
	require.ErrorIs(t, err, queries.ErrNotAllowed)
	_, err = queries.StorageStatement(queries.Recommendation{Action: queries.ActionOptimizePartition, Database: "x`; DROP DATABASE y; --", Table: "request_logs", PartitionID: "all"}, "")
	require.ErrorIs(t, err, queries.ErrNotAllowed)
}

// recorder records audit events as the processors' Auditor does, keeping them.
type recorder struct {
	now    func() time.Time
	events []*schemas.AuditEvent
	fail   error
}

func (r *recorder) Record(_ context.Context, actor, action, target string, params map[string]string, result string) (*schemas.AuditEvent, error) {
	if r.fail != nil {
		return nil, r.fail
	}
	id, err := schemas.NewEventID()
	if err != nil {
		return nil, err
	}
	e := &schemas.AuditEvent{Type: schemas.TypeAudit, V: schemas.AuditVersion, EventID: id, TimeMs: r.now().UnixMilli(),
		Instance: "queries-test", Actor: actor, Action: action, Target: target, Params: params, Result: result}
	r.events = append(r.events, e)
	return e, e.Validate()
}

func catalogOf(t *testing.T, files map[string]string) *queries.Catalog {
	t.Helper()
	fsys := fstest.MapFS{}
	for n, s := range files {
		fsys[n+".sql"] = &fstest.MapFile{Data: []byte(s)}
	}
	c, err := queries.Load(fsys)
	require.NoError(t, err)
	return c
}

// README.md's table sections list the columns each table has on the local server.
func TestREADMEColumns(t *testing.T) {
	conn, db := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(testenv.Context(t), time.Minute)
	defer cancel()
	require.NoError(t, chddl.Migrate(ctx, conn, chddl.Options{Database: db, RetentionDays: 30, StatsRetentionDays: 730}))
	doc, err := os.ReadFile("README.md")
	require.NoError(t, err)
	tables := chdbtest.READMETables(string(doc))
	require.NotEmpty(t, tables)
	for table, cols := range tables {
		res, err := queries.RunSQL(ctx, conn, "columns", fmt.Sprintf("SELECT name FROM system.columns WHERE database = '%s' AND table = '%s' ", db, table))
		require.NoError(t, err)
		var names []string
		for _, r := range res.Rows {
			names = append(names, r[0].(string))
		}
		var doc []string
		for _, c := range cols {
			doc = append(doc, c.Name)
		}
		require.Equal(t, names, doc, "README.md columns of %s (regenerate: see queries/chdbtest)", table)
	}
}
