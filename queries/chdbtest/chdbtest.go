// Package chdbtest checks the queries on the current ClickHouse engine, in process
// through chdb (libchdb.so, ClickHouse 26.x), and holds what that check shares with
// the queries' integration test.
//
// Its tests need the build tag chdb and CHDB_LIB_PATH: chdb-go loads the library when
// its package initialises and panics without it. queries' integration test loads a
// database on the local 18.16 server from generated events, runs every query there,
// writes the stored rows and the results to a file (Input) and runs TestCases here in
// a child `go test`: the rows are copied into chdb and every query must return there
// what it returned on 18.16, once with native query parameters and once with the
// literals queries.Render binds.
//
// TestREADME checks the column lists in queries/README.md against the current engine's
// system.columns; regenerate them with
//
//	CHDB_LIB_PATH=$(deploy/local/chdb.sh) go test -tags chdb ./queries/chdbtest -run TestREADME -update
package chdbtest

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/geminicodeapi/gca/queries"
)

// CasesEnv names the variable that holds the path of the Input file.
const CasesEnv = "GCA_QUERIES_CHDB_CASES"

// Input is what TestCases checks.
type Input struct {
	// Database is the name to create (the 18.16 database's, so results that name it
	// agree).
	Database string `json:"database"`
	// Inserts load the stored rows, in order, after the schema is applied.
	Inserts []string `json:"inserts"`
	Cases   []Case   `json:"cases"`
}

// Case is a query run with parameters, and what it returned on 18.16.
type Case struct {
	Query  string            `json:"query"`
	Params map[string]string `json:"params"`
	// Want holds the rows as queries.Result.Strings formats them; a "*" cell is not
	// compared.
	Want [][]string `json:"want"`
	// Columns, when set, are the only columns compared (those the events determine
	// on both engines).
	Columns []string `json:"columns,omitempty"`
}

// InsertStatement renders a result read from a table as an INSERT of the same rows.
func InsertStatement(db, table string, res *queries.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO `%s`.`%s` (", db, table)
	for i, c := range res.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("`" + c.Name + "`")
	}
	b.WriteString(") VALUES")
	for i, row := range res.Rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n(")
		for j, v := range row {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(literal(v))
		}
		b.WriteByte(')')
	}
	return b.String()
}

func literal(v any) string {
	switch x := v.(type) {
	case string:
		return queries.QuoteString(x)
	case time.Time:
		return "'" + x.UTC().Format("2006-01-02 15:04:05.000") + "'"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = literal(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// Column is a column as README.md lists it.
type Column struct {
	Name, Type string
}

var (
	blockPattern = regexp.MustCompile("(?s)<!-- columns:([a-z_]+) -->\n(.*?)<!-- /columns -->")
	rowPattern   = regexp.MustCompile("^\\| `([^`]+)` \\| `([^`]+)` \\|")
)

// READMETables returns the column lists of README.md, by table.
func READMETables(doc string) map[string][]Column {
	out := map[string][]Column{}
	for _, m := range blockPattern.FindAllStringSubmatch(doc, -1) {
		var cols []Column
		for _, line := range strings.Split(m[2], "\n") {
			if r := rowPattern.FindStringSubmatch(line); r != nil {
				cols = append(cols, Column{Name: r[1], Type: r[2]})
			}
		}
		out[m[1]] = cols
	}
	return out
}

// RenderREADMETable writes a table's column list as README.md holds it.
func RenderREADMETable(table string, cols []Column) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- columns:%s -->\n| column | type (current ClickHouse) |\n|---|---|\n", table)
	for _, c := range cols {
		fmt.Fprintf(&b, "| `%s` | `%s` |\n", c.Name, c.Type)
	}
	b.WriteString("<!-- /columns -->")
	return b.String()
}

// ReplaceREADMETables rewrites every column list of doc with cols.
func ReplaceREADMETables(doc string, cols map[string][]Column) string {
	return blockPattern.ReplaceAllStringFunc(doc, func(block string) string {
		table := blockPattern.FindStringSubmatch(block)[1]
		return RenderREADMETable(table, cols[table])
	})
}
