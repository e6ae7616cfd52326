package chddl

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden renderings in testdata/")

func defaultOptions() Options {
	return Options{Database: "gca", RetentionDays: 30, StatsRetentionDays: 730}
}

func renderAll(t *testing.T, v Version, opts Options) string {
	t.Helper()
	ms, err := Render(v, opts)
	require.NoError(t, err)
	var b strings.Builder
	for _, m := range ms {
		b.WriteString("-- migration " + m.Name + "\n")
		for _, s := range m.Statements {
			b.WriteString(s + ";\n\n")
		}
	}
	return b.String()
}

// The renderings are reviewed as files: a change to a migration shows up as a diff of
// what each server will run. Regenerate with `go test ./schemas/chddl -update`.
func TestRenderGolden(t *testing.T) {
	cluster := defaultOptions()
	cluster.Cluster = "gca_cluster"
	for _, tc := range []struct {
		file string
		v    Version
		opts Options
	}{
		{"legacy-18.16.sql", Legacy, defaultOptions()},
		{"current-26.7.sql", Current, defaultOptions()},
		{"cluster-26.7.sql", Current, cluster},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got := renderAll(t, tc.v, tc.opts)
			path := filepath.Join("testdata", tc.file)
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run with -update to create it")
			require.Equal(t, string(want), got)
		})
	}
}

func TestRenderVersions(t *testing.T) {
	legacy := renderAll(t, Legacy, defaultOptions())
	current := renderAll(t, Current, defaultOptions())

	// 18.16 has neither DateTime64 nor TTL nor bloom_filter indexes.
	for _, absent := range []string{"DateTime64", "TTL ", "bloom_filter", "ON CLUSTER", "Replicated", "Distributed"} {
		require.NotContains(t, legacy, absent)
	}
	require.Contains(t, legacy, "timestamp              DateTime('UTC')")

	require.Contains(t, current, "timestamp              DateTime64(3, 'UTC')")
	require.Contains(t, current, "INDEX request_id_bloom request_id TYPE bloom_filter")
	// Retention: the log tables by RetentionDays, system_stats by StatsRetentionDays.
	ms, err := Render(Current, defaultOptions())
	require.NoError(t, err)
	got := map[string]string{}
	table := regexp.MustCompile("CREATE TABLE IF NOT EXISTS `gca`.`(\\w+)`")
	ttl := regexp.MustCompile(`(?m)^TTL (.*)$`)
	for _, m := range ms {
		for _, s := range m.Statements {
			if tm, ok := table.FindStringSubmatch(s), ttl.FindStringSubmatch(s); tm != nil && ok != nil {
				got[tm[1]] = ok[1]
			}
		}
	}
	require.Equal(t, map[string]string{
		"request_logs":       "toDateTime(timestamp) + INTERVAL 30 DAY",
		"key_state_log":      "toDateTime(timestamp) + INTERVAL 30 DAY",
		"error_logs":         "toDateTime(timestamp) + INTERVAL 30 DAY",
		"api_key_failures":   "toDateTime(ts) + INTERVAL 30 DAY",
		"system_stats_daily": "date + INTERVAL 730 DAY",
	}, got)

	// Both versions create the same objects with the same sorting keys.
	objects := regexp.MustCompile(`CREATE (?:TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS (\S+)`)
	require.Equal(t, objects.FindAllString(legacy, -1), objects.FindAllString(current, -1))
	orderBy := regexp.MustCompile(`ORDER BY [^;\n]*`)
	require.Equal(t, orderBy.FindAllString(legacy, -1), orderBy.FindAllString(current, -1))

	// No retention: no TTL at all.
	forever := defaultOptions()
	forever.RetentionDays, forever.StatsRetentionDays = 0, 0
	require.NotContains(t, renderAll(t, Current, forever), "TTL ")
}

func TestRenderCluster(t *testing.T) {
	opts := defaultOptions()
	opts.Cluster = "gca_cluster"
	ms, err := Render(Current, opts)
	require.NoError(t, err)
	distributed := map[string]bool{}
	for _, m := range ms {
		for _, s := range m.Statements {
			head := strings.SplitN(s, "\n", 2)[0]
			if strings.HasPrefix(strings.TrimSpace(s), "--") {
				head = s[strings.Index(s, "CREATE"):]
				head = strings.SplitN(head, "\n", 2)[0]
			}
			require.Contains(t, s, " ON CLUSTER `gca_cluster`", "every statement runs on the cluster: %s", head)
			if m := regexp.MustCompile("ENGINE = Distributed\\(`gca_cluster`, `gca`, `(\\w+)_local`, ").FindStringSubmatch(s); m != nil {
				distributed[m[1]] = true
			}
			if strings.Contains(s, "MergeTree") {
				require.Regexp(t, `ENGINE = Replicated(Replacing|Aggregating)MergeTree\('/clickhouse/tables/\{shard\}/gca/\w+_local', '\{replica\}'\)`, s)
				require.Contains(t, head, "_local`", "storage tables are the _local ones: %s", head)
			}
			if strings.Contains(s, "MATERIALIZED VIEW") {
				require.Regexp(t, "(?s)TO `gca`.`\\w+_local`.*FROM `gca`.`request_logs_local`", s, "views read and write local tables")
			}
		}
	}
	require.Equal(t, map[string]bool{
		"request_logs": true, "key_state_log": true, "audit_log": true, "error_logs": true,
		"system_stats_daily": true, "api_key_metrics_state": true, "api_key_failures": true,
	}, distributed)
	all := renderAll(t, Current, opts)
	require.Contains(t, all, "GLOBAL ALL INNER JOIN", "a JOIN whose left side is Distributed must be GLOBAL")
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		errs []string
	}{
		{"defaults", defaultOptions(), nil},
		{"keep forever", Options{Database: "gca"}, nil},
		{"bad names", Options{Database: "gca-prod", Cluster: "my cluster"}, []string{`database "gca-prod"`, `cluster "my cluster"`}},
		{"negative", Options{Database: "gca", RetentionDays: -1, StatsRetentionDays: -2}, []string{"retention days -1", "stats retention days -2"}},
		{"stats shorter than logs", Options{Database: "gca", RetentionDays: 30, StatsRetentionDays: 7}, []string{"stats retention (7 days) is shorter than log retention (30 days)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.errs == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, e := range tc.errs {
				require.ErrorContains(t, err, e)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]Version{
		"18.16.1":   {18, 16, 1},
		"26.7.2.1":  {26, 7, 2},
		"24.8":      {24, 8, 0},
		" 25.3.1\n": {25, 3, 1},
	} {
		got, err := ParseVersion(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "26", "x.y", "26.x.1"} {
		_, err := ParseVersion(in)
		require.Error(t, err, in)
	}
	require.False(t, Legacy.Modern())
	require.True(t, Current.Modern())
	require.True(t, Version{20, 1, 0}.Modern())
}

func TestSplitStatements(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
		want      []string
	}{
		{"two", "SELECT 1;\nSELECT 2;", []string{"SELECT 1", "SELECT 2"}},
		{"semicolon in string", "SELECT ';' AS x; SELECT 'it\\'s;'", []string{"SELECT ';' AS x", "SELECT 'it\\'s;'"}},
		{"semicolon in comment", "-- a; b\nSELECT 1;", []string{"-- a; b\nSELECT 1"}},
		{"apostrophe in comment", "-- the seed's table\nSELECT 1;", []string{"-- the seed's table\nSELECT 1"}},
		{"empty and comment-only statements dropped", ";\n  ;\n-- nothing\n;SELECT 3", []string{"SELECT 3"}},
		{"backquoted", "CREATE TABLE `a;b` (x UInt8);", []string{"CREATE TABLE `a;b` (x UInt8)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, SplitStatements(tc.sql))
		})
	}
}

func TestMigrationsAreNumberedAndChecksummed(t *testing.T) {
	ms, err := Render(Legacy, defaultOptions())
	require.NoError(t, err)
	for i, m := range ms {
		require.Equal(t, i+1, m.Version, "migrations are numbered 1..n without gaps")
		require.Len(t, m.Checksum, 64)
		require.NotEmpty(t, m.Statements)
	}
	again, err := Render(Current, defaultOptions())
	require.NoError(t, err)
	for i := range ms {
		require.Equal(t, ms[i].Checksum, again[i].Checksum, "the checksum is of the template, not of a rendering")
	}
}
