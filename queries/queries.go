// Package queries holds what analysts and operators ask of ClickHouse: named,
// documented SQL files (embedded from this directory), the code that binds their
// parameters safely, runs them and prints the result as a table, CSV or JSON, and the
// storage optimizer that executes the storage_recommendations query's advice.
//
// # Files
//
// Each <name>.sql holds one SELECT. Its header, the leading comment block, documents it:
//
//	-- One line that says what the query answers.
//	--
//	-- Free text: definitions, caveats, the 18.16 limits it works around.
//	--
//	-- @param from  DateTime        now-24h  start of the window (inclusive)
//	-- @param table Identifier(a|b) a        table to check
//	-- @example --param from=2025-03-09
//
// A parameter line is `@param <name> <type> <default> <description>`. The default is one
// token (two single quotes for the empty string); DateTime defaults may be relative to
// the time of the call (now, now-15m, now-24h, now-7d), Date defaults to the current UTC
// day (today, today-7d). Types:
//
//	Int, UInt, Float   64-bit numbers; (lo..hi) bounds them, e.g. UInt(1..1440)
//	String             any text; (a|b|c) restricts it to those values
//	Date, DateTime     a UTC day / instant (DateTime accepts RFC 3339, "YYYY-MM-DD hh:mm:ss",
//	                   "YYYY-MM-DD" and Unix seconds)
//	Identifier(a|b)    a table name from the allow-list in parentheses
//
// The body refers to a parameter as ClickHouse's query parameters do, `{name:CHType}`,
// with CHType Int64, UInt64, Float64, String, Date, DateTime('UTC') or Identifier. So a
// file runs unchanged in clickhouse-client on a current server
// (`clickhouse-client --param_from='2025-03-09 00:00:00' --queries-file x.sql`).
//
// # Binding
//
// ClickHouse 18.16 (the local server) has no server-side parameters, so Render binds
// them client-side: every value is parsed and validated against its declared type, then
// written as a literal of that type (strings quoted, with backslashes, quotes and control
// characters escaped; identifiers only from their allow-list, backquoted). A value never
// becomes SQL text of its own. Run executes that rendering on every server version, so
// the path that runs on 18.16 is the path that runs everywhere; RenderNative gives the
// body with its placeholders and the validated values for servers with native
// parameters (what clickhouse-client --param_x does).
package queries

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

//go:embed *.sql
var files embed.FS

// Query is one parsed .sql file.
type Query struct {
	// Name is the file name without .sql.
	Name string `json:"name"`
	// Summary is the header's first line.
	Summary string `json:"summary"`
	// Description is the rest of the header's free text.
	Description string `json:"description,omitempty"`
	// Params are the declared parameters, in header order.
	Params []Param `json:"params"`
	// Examples are the header's @example lines: CLI arguments that run the query.
	Examples []string `json:"examples,omitempty"`
	// Body is the SQL after the header, with its {name:Type} placeholders.
	Body string `json:"-"`
	// parts is the body cut at its placeholders.
	parts []part
}

// Param returns the declared parameter of that name.
func (q *Query) Param(name string) (Param, bool) {
	for _, p := range q.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// Catalog is a set of parsed queries.
type Catalog struct {
	queries map[string]*Query
	names   []string
	// Now is the clock relative defaults (now-24h, today) are taken from. Default
	// time.Now.
	Now func() time.Time
}

// ErrUnknownQuery is returned for a name the catalog does not hold.
var ErrUnknownQuery = errors.New("unknown query")

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Load parses every .sql file of fsys (its top directory).
func Load(fsys fs.FS) (*Catalog, error) {
	paths, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("list query files: %w", err)
	}
	sort.Strings(paths)
	c := &Catalog{queries: map[string]*Query{}, Now: time.Now}
	var errs []error
	for _, p := range paths {
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", p, err))
			continue
		}
		name := strings.TrimSuffix(path.Base(p), ".sql")
		q, err := Parse(name, string(src))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.queries[name] = q
		c.names = append(c.names, name)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// List returns the queries sorted by name.
func (c *Catalog) List() []*Query {
	out := make([]*Query, 0, len(c.names))
	for _, n := range c.names {
		out = append(out, c.queries[n])
	}
	return out
}

// Get returns the query of that name.
func (c *Catalog) Get(name string) (*Query, error) {
	q, ok := c.queries[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (see `processors query list`)", ErrUnknownQuery, name)
	}
	return q, nil
}

// builtin is the catalog of the embedded files. They are checked by the package's
// tests, so a parse error here is a build that never passed its tests.
var builtin = sync.OnceValues(func() (*Catalog, error) { return Load(files) })

// Builtin returns the catalog of the queries embedded in the binary.
func Builtin() (*Catalog, error) { return builtin() }

// List returns the embedded queries sorted by name (none if they do not parse).
func List() []*Query {
	c, err := builtin()
	if err != nil {
		return nil
	}
	return c.List()
}

// Get returns the embedded query of that name.
func Get(name string) (*Query, error) {
	c, err := builtin()
	if err != nil {
		return nil, err
	}
	return c.Get(name)
}

// Render returns the embedded query's SQL with the parameters bound as literals.
func Render(name string, params map[string]string) (string, error) {
	c, err := builtin()
	if err != nil {
		return "", err
	}
	return c.Render(name, params)
}

// Parse parses one query file.
func Parse(name, src string) (*Query, error) {
	if !namePattern.MatchString(name) {
		return nil, fmt.Errorf("query file %s.sql: name must match %s", name, namePattern)
	}
	q := &Query{Name: name}
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	var desc []string
	i := 0
	for ; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, "--") {
			break
		}
		text := strings.TrimPrefix(strings.TrimPrefix(line, "--"), " ")
		switch {
		case strings.HasPrefix(text, "@param"):
			p, err := parseParam(strings.TrimSpace(strings.TrimPrefix(text, "@param")))
			if err != nil {
				return nil, fmt.Errorf("query %s: line %d: %w", name, i+1, err)
			}
			if _, dup := q.Param(p.Name); dup {
				return nil, fmt.Errorf("query %s: parameter %s declared twice", name, p.Name)
			}
			q.Params = append(q.Params, p)
		case strings.HasPrefix(text, "@example"):
			q.Examples = append(q.Examples, strings.TrimSpace(strings.TrimPrefix(text, "@example")))
		case strings.HasPrefix(text, "@"):
			return nil, fmt.Errorf("query %s: line %d: unknown header tag in %q", name, i+1, text)
		case q.Summary == "":
			q.Summary = strings.TrimSpace(text)
		default:
			desc = append(desc, strings.TrimRight(text, " "))
		}
	}
	if q.Summary == "" {
		return nil, fmt.Errorf("query %s: header has no summary line", name)
	}
	q.Description = strings.TrimSpace(strings.Join(desc, "\n"))
	body := strings.TrimSpace(strings.Join(lines[i:], "\n"))
	body = strings.TrimSpace(strings.TrimSuffix(body, ";"))
	if body == "" {
		return nil, fmt.Errorf("query %s: no SQL after the header", name)
	}
	parts, err := split(body)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", name, err)
	}
	used := map[string]bool{}
	for _, pt := range parts {
		if pt.param == "" {
			continue
		}
		p, ok := q.Param(pt.param)
		if !ok {
			return nil, fmt.Errorf("query %s: placeholder {%s:%s} has no @param", name, pt.param, pt.chType)
		}
		if want := p.Type.Kind.chType(); pt.chType != want {
			return nil, fmt.Errorf("query %s: placeholder {%s:%s}: a %s parameter is written {%s:%s}", name, pt.param, pt.chType, p.Type.Kind, pt.param, want)
		}
		used[pt.param] = true
	}
	for _, p := range q.Params {
		if !used[p.Name] {
			return nil, fmt.Errorf("query %s: parameter %s is declared but never used", name, p.Name)
		}
	}
	q.Body, q.parts = body, parts
	return q, nil
}
