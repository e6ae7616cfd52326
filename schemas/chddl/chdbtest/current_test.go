//go:build chdb

package chdbtest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chdb-io/chdb-go/chdb"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/chddl"
)

func query(t *testing.T, s *chdb.Session, sql string) string {
	t.Helper()
	r, err := s.Query(sql, "TSV")
	require.NoError(t, err, sql)
	return strings.TrimRight(r.String(), "\n")
}

// The DDL rendered for the engine users deploy applies (twice), and the materialized
// views and views compute the seed's rows from a few requests.
func TestCurrentEngine(t *testing.T) {
	s, err := chdb.NewSession(t.TempDir())
	require.NoError(t, err)
	defer s.Close()

	v, err := chddl.ParseVersion(query(t, s, "SELECT version()"))
	require.NoError(t, err)
	require.True(t, v.Modern(), "chdb runs %s", v)
	t.Logf("chdb engine %s", v)

	opts := chddl.Options{Database: "gca", RetentionDays: 30, StatsRetentionDays: 730}
	ms, err := chddl.Render(v, opts)
	require.NoError(t, err)
	query(t, s, "CREATE DATABASE IF NOT EXISTS gca")
	for range 2 {
		for _, m := range ms {
			for _, stmt := range m.Statements {
				query(t, s, stmt)
			}
		}
	}

	// Three requests two hours ago (recent: the TTL would drop older rows at once).
	base := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	at := func(d time.Duration) string { return "'" + base.Add(d).Format("2006-01-02 15:04:05.000") + "'" }
	query(t, s, fmt.Sprintf(`INSERT INTO gca.request_logs (id, timestamp, client_type, api_key_hash, model, response_time, status_code,
  input_tokens, output_tokens, total_tokens, is_stream, has_error, error_type, error_message, project, interrupted,
  attempts.key_hash, attempts.project, attempts.ts, attempts.status, attempts.failure, attempts.latency_ms,
  attempts.input_tokens, attempts.counted, attempts.retry_after_ms) VALUES
 ('e1', %[1]s, 'openai', 'k1', 'gemini-2.5-pro', 100, 200, 10, 20, 30, 0, 0, '', '', 'p1', '',
  ['k2','k1'], ['p2','p1'], [%[1]s, %[2]s], [429,200], ['minute_quota',''], [5,95], [10,10], [0,1], [24000,0]),
 ('e2', %[3]s, 'claude', 'k2', 'gemini-2.5-flash', 50, 504, 3, 0, 3, 1, 1, 'timeout', 'upstream "timed" out', 'p2', '',
  ['k2'], ['p2'], [%[3]s], [0], ['timeout'], [50], [3], [0], [0]),
 ('e3', %[4]s, 'gemini', 'k2', 'gemini-2.5-flash', 70, 429, 3, 0, 3, 0, 1, 'rate_limit', 'quota', 'p2', '',
  ['k2','k2'], ['p2','p2'], [%[4]s, %[5]s], [429,429], ['minute_quota','day_quota'], [50,20], [3,3], [0,0], [0,0])`,
		at(0), at(time.Second), at(2*time.Second), at(3*time.Second), at(4*time.Second)))
	query(t, s, fmt.Sprintf(`INSERT INTO gca.key_state_log (id, timestamp, kind, key_hash, project) VALUES
 ('s1', %s, 'disable', 'k1', 'p1'), ('s2', %s, 'enable', 'k1', 'p1'), ('s3', %s, 'disable', 'k2', 'p2')`,
		at(-time.Hour), at(-30*time.Minute), at(-20*time.Minute)))

	day := base.Format("2006-01-02")
	ts := func(d time.Duration) string { return base.Add(d).Format("2006-01-02 15:04:05.000") }
	require.Equal(t,
		strings.Join([]string{day, "3", "1", "2", "1", "1", "1", "0", "36", "16", "20", "73.33333333333333", "50", "100",
			"0.6666666666666666", "1", "1", "0", "0", "0", "1", "2", "1", ts(3 * time.Second)}, "\t"),
		query(t, s, "SELECT * FROM gca.system_stats"))

	require.Equal(t, strings.Join([]string{
		strings.Join([]string{"k1", "1", "1", "0", "95", "95", "95", "95", "1", ts(time.Second), "0", "1970-01-01 00:00:00.000",
			"30", "10", "20", ts(time.Second), ts(time.Second), ts(time.Second), ts(time.Second)}, "\t"),
		strings.Join([]string{"k2", "4", "0", "4", "31.25", "20", "5", "50", "0", ts(4 * time.Second), "3", ts(4 * time.Second),
			"0", "0", "0", ts(4 * time.Second), ts(0), ts(0), ts(4 * time.Second)}, "\t"),
	}, "\n"), query(t, s, "SELECT * FROM gca.api_key_metrics ORDER BY key_hash"))

	require.Equal(t, strings.Join([]string{
		"e2\ttimeout\t#1 key=k2 project=p2 status=0 failure=timeout latency_ms=50\t" +
			`{"model":"gemini-2.5-flash","original_model":"","project":"p2","interrupted":"","attempts":1,"failures":["timeout"]}`,
		"e3\trate_limit\t#1 key=k2 project=p2 status=429 failure=minute_quota latency_ms=50\\n#2 key=k2 project=p2 status=429 failure=day_quota latency_ms=20\t" +
			`{"model":"gemini-2.5-flash","original_model":"","project":"p2","interrupted":"","attempts":2,"failures":["minute_quota","day_quota"]}`,
	}, "\n"), query(t, s, "SELECT id, error_type, error_stack, context FROM gca.error_logs ORDER BY id"))

	// The processors' dedupe lookup finds a stored event by its sorting key, here with a
	// Memory table in place of the external table the native protocol sends.
	lk := chddl.RequestLookup(v, opts)
	var cols []string
	for _, c := range lk.Columns {
		cols = append(cols, c.Name+" "+c.Type)
	}
	query(t, s, fmt.Sprintf("CREATE TABLE %s (%s) ENGINE = Memory", chddl.BatchTable, strings.Join(cols, ", ")))
	query(t, s, fmt.Sprintf("INSERT INTO %s VALUES ('e1', %s, 'k1', 'gemini-2.5-pro'), ('e9', %s, 'k1', 'gemini-2.5-pro')", chddl.BatchTable, at(0), at(0)))
	require.Equal(t, "e1", query(t, s, fmt.Sprintf(lk.Query, base.Unix(), base.Unix()+1)))
	for _, lk := range []chddl.Lookup{chddl.KeyStateLookup(v, opts), chddl.AuditLookup(v, opts)} {
		query(t, s, "DROP TABLE "+chddl.BatchTable)
		cols = cols[:0]
		for _, c := range lk.Columns {
			cols = append(cols, c.Name+" "+c.Type)
		}
		query(t, s, fmt.Sprintf("CREATE TABLE %s (%s) ENGINE = Memory", chddl.BatchTable, strings.Join(cols, ", ")))
		query(t, s, fmt.Sprintf(lk.Query, base.Unix(), base.Unix()+1))
	}
}
