//go:build chdb

package chdbtest

import (
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/chdb-io/chdb-go/chdb"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/queries"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

var update = flag.Bool("update", false, "rewrite the column lists of queries/README.md from the current engine")

func query(t *testing.T, s *chdb.Session, sql, format string) string {
	t.Helper()
	r, err := s.Query(sql, format)
	require.NoError(t, err, "%.2000s", sql)
	return r.String()
}

// newEngine opens a chdb session with the schema migrated for the current engine, in
// database db. TTL is off (retention 0): the fixture's events are from March 2025 and a
// TTL would delete them as they are inserted.
func newEngine(t *testing.T, db string) *chdb.Session {
	t.Helper()
	s, err := chdb.NewSession(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(s.Close)
	v, err := chddl.ParseVersion(strings.TrimSpace(query(t, s, "SELECT version()", "TSV")))
	require.NoError(t, err)
	require.True(t, v.Modern(), "chdb runs %s", v)
	t.Logf("chdb engine %s", v)
	ms, err := chddl.Render(v, chddl.Options{Database: db})
	require.NoError(t, err)
	query(t, s, "CREATE DATABASE IF NOT EXISTS `"+db+"`", "TSV")
	for _, m := range ms {
		for _, stmt := range m.Statements {
			query(t, s, stmt, "TSV")
		}
	}
	return s
}

// result is a query's result as chdb returns it in JSONCompact.
type result struct {
	Meta []struct{ Name, Type string } `json:"meta"`
	Data [][]any                       `json:"data"`
}

func run(t *testing.T, s *chdb.Session, sql string) result {
	t.Helper()
	out := query(t, s, sql, "JSONCompact")
	var r result
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&r), out)
	return r
}

var millis = regexp.MustCompile(`^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.000$`)

// cell formats a JSONCompact value as queries.Text does for 18.16's: DateTime64 with
// zero milliseconds (the rows came from 18.16, whole seconds) as DateTime.
func cell(v any) string {
	switch x := v.(type) {
	case string:
		if m := millis.FindStringSubmatch(x); m != nil {
			return m[1]
		}
		return x
	case json.Number:
		return x.String()
	case nil:
		return "NULL"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// same compares an expected cell with a returned one: numbers by value (the engines
// print floats alike, but not necessarily in the same notation); "*" matches anything.
func same(a, b string) bool {
	if a == b || a == "*" {
		return true
	}
	fa, ea := strconv.ParseFloat(a, 64)
	fb, eb := strconv.ParseFloat(b, 64)
	return ea == nil && eb == nil && fa == fb
}

func compare(t *testing.T, c Case, how string, got result) {
	t.Helper()
	idx := make([]int, 0, len(got.Meta))
	if len(c.Columns) == 0 {
		for i := range got.Meta {
			idx = append(idx, i)
		}
	}
	for _, name := range c.Columns {
		found := false
		for i, m := range got.Meta {
			if m.Name == name {
				idx, found = append(idx, i), true
			}
		}
		require.True(t, found, "%s returns no column %s", c.Query, name)
	}
	var want [][]string
	for _, r := range c.Want {
		// chdb has only the migrations' tables; Migrate's bookkeeping table is not there.
		if c.Query == "storage_metrics" && r[0] == "schema_migrations" {
			continue
		}
		row := make([]string, len(idx))
		for j, i := range idx {
			row[j] = r[i]
		}
		want = append(want, row)
	}
	var have [][]string
	for _, r := range got.Data {
		row := make([]string, len(idx))
		for j, i := range idx {
			row[j] = cell(r[i])
		}
		have = append(have, row)
	}
	require.Equal(t, len(want), len(have), "%s %v (%s): rows", c.Query, c.Params, how)
	for i := range want {
		for j := range want[i] {
			if !same(want[i][j], have[i][j]) {
				require.Equal(t, want[i], have[i], "%s %v (%s): row %d", c.Query, c.Params, how, i+1)
			}
		}
	}
}

// setParams is the SET statements that give native query parameters their values.
func setParams(values map[string]string) string {
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString("SET param_" + k + " = " + queries.QuoteString(values[k]) + ";\n")
	}
	return b.String()
}

// Every case returns on the current engine what it returned on 18.16, with native
// parameters and with bound literals.
func TestCases(t *testing.T) {
	path := os.Getenv(CasesEnv)
	if path == "" {
		t.Skip(CasesEnv + " is not set: run by queries' integration test TestQueries")
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var in Input
	require.NoError(t, json.Unmarshal(b, &in))
	s := newEngine(t, in.Database)
	use := "USE `" + in.Database + "`;\n"
	// As on 18.16 in the fixture: no merges, so duplicates and parts stay as inserted.
	tables := query(t, s, "SELECT name FROM system.tables WHERE database = '"+in.Database+"' AND engine LIKE '%MergeTree'", "TSV")
	for _, tbl := range strings.Fields(tables) {
		query(t, s, "SYSTEM STOP MERGES `"+in.Database+"`.`"+tbl+"`", "TSV")
	}
	for _, ins := range in.Inserts {
		query(t, s, ins, "TSV")
	}
	cat, err := queries.Builtin()
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, c := range in.Cases {
		body, values, err := cat.RenderNative(c.Query, c.Params)
		require.NoError(t, err)
		compare(t, c, "native parameters", run(t, s, use+setParams(values)+body))
		sql, err := cat.Render(c.Query, c.Params)
		require.NoError(t, err)
		compare(t, c, "bound literals", run(t, s, use+sql))
		seen[c.Query] = true
	}
	for _, q := range cat.List() {
		require.True(t, seen[q.Name], "query %s was not run on the current engine", q.Name)
	}
	t.Logf("%d cases of %d queries agree with 18.16, each with native parameters and with bound literals", len(in.Cases), len(seen))
}

// A hostile string reaches the current engine unchanged both ways: bound as a literal,
// and as a native parameter's escaped text.
func TestEscaping(t *testing.T) {
	s, err := chdb.NewSession(t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	fsys := fstest.MapFS{"echo.sql": {Data: []byte("-- Echo.\n-- @param s String '' the value\nSELECT {s:String} AS s")}}
	cat, err := queries.Load(fsys)
	require.NoError(t, err)
	for _, v := range []string{`'`, `\`, `\'`, `\\'`, `' OR '1'='1`, `'; DROP TABLE t; --`, "a\nb\r\nc\td",
		"nul\x00byte", "bell\x07 del\x7f", `{s:String}`, "`b` \"d\"", "😀 ñ 日本", `\x27 \047 \N`} {
		sql, err := cat.Render("echo", map[string]string{"s": v})
		require.NoError(t, err)
		require.Equal(t, v, run(t, s, sql).Data[0][0], "literal %q", v)
		body, values, err := cat.RenderNative("echo", map[string]string{"s": v})
		require.NoError(t, err)
		require.Equal(t, v, run(t, s, setParams(values)+body).Data[0][0], "native %q", v)
	}
}

// README.md lists each table's columns with the types current ClickHouse gives them.
func TestREADME(t *testing.T) {
	const db = "gca"
	s := newEngine(t, db)
	doc, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	listed := READMETables(string(doc))
	require.NotEmpty(t, listed)
	actual := map[string][]Column{}
	for table := range listed {
		r := run(t, s, "SELECT name, type FROM system.columns WHERE database = '"+db+"' AND table = '"+table+"' ORDER BY position")
		require.NotEmpty(t, r.Data, "table %s", table)
		for _, row := range r.Data {
			actual[table] = append(actual[table], Column{Name: cell(row[0]), Type: cell(row[1])})
		}
	}
	if *update {
		require.NoError(t, os.WriteFile("../README.md", []byte(ReplaceREADMETables(string(doc), actual)), 0o644))
		return
	}
	for table, cols := range listed {
		require.Equal(t, actual[table], cols, "README.md columns of %s (regenerate with -update)", table)
	}
}
