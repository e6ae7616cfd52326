package queries

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Conn is the part of a clickhouse-go native connection that runs a query.
type Conn interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// Column is a result column: its name and ClickHouse type.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Result is what a query returned. Values are plain Go values: integers of the
// column's width, float64, string, time.Time (UTC), slices for arrays, nil for NULL.
type Result struct {
	Query   string
	Columns []Column
	Rows    [][]any
}

// maxRows bounds what Run reads; the queries aggregate, so more means a mistake.
const maxRows = 100_000

// Run renders the query with the parameters bound as literals and runs it.
func (c *Catalog) Run(ctx context.Context, conn Conn, name string, params map[string]string) (*Result, error) {
	sql, err := c.Render(name, params)
	if err != nil {
		return nil, err
	}
	return RunSQL(ctx, conn, name, sql)
}

// Run runs an embedded query; see Catalog.Run.
func Run(ctx context.Context, conn Conn, name string, params map[string]string) (*Result, error) {
	c, err := builtin()
	if err != nil {
		return nil, err
	}
	return c.Run(ctx, conn, name, params)
}

// RunSQL runs a rendered query and reads every row.
func RunSQL(ctx context.Context, conn Conn, name, sql string) (*Result, error) {
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("run query %s: %w", name, err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	res := &Result{Query: name, Columns: make([]Column, len(types))}
	dest := make([]any, len(types))
	for i, t := range types {
		res.Columns[i] = Column{Name: t.Name(), Type: t.DatabaseTypeName()}
		dest[i] = reflect.New(t.ScanType()).Interface()
	}
	for rows.Next() {
		if len(res.Rows) == maxRows {
			return nil, fmt.Errorf("run query %s: more than %d rows", name, maxRows)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("run query %s: scan row %d: %w", name, len(res.Rows)+1, err)
		}
		row := make([]any, len(dest))
		for i, d := range dest {
			row[i] = plain(reflect.ValueOf(d).Elem())
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("run query %s: %w", name, err)
	}
	return res, nil
}

// plain copies a scanned value out of the reused destination, dereferencing
// Nullable's pointers and normalizing times to UTC.
func plain(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return plain(v.Elem())
	case reflect.Slice:
		// Arrays, Array(UInt8) included, become []any of their elements.
		out := make([]any, v.Len())
		for i := range out {
			out[i] = plain(v.Index(i))
		}
		return out
	}
	if t, ok := v.Interface().(time.Time); ok {
		return t.UTC()
	}
	return v.Interface()
}
