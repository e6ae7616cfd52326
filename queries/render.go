package queries

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// part is a piece of a query body: SQL text, or a placeholder.
type part struct {
	text   string
	param  string
	chType string
}

var placeholderPattern = regexp.MustCompile(`^\{([A-Za-z_][A-Za-z0-9_]*):([^{}\n]+)\}`)

// split cuts a body at its {name:Type} placeholders. It follows ClickHouse's lexer far
// enough to know what is code: quoted strings and identifiers and comments are text,
// a brace in code must open a placeholder, and a semicolon may only end the body.
func split(body string) ([]part, error) {
	var parts []part
	start := 0
	for i := 0; i < len(body); {
		c := body[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			end, err := skipQuoted(body, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '-' && strings.HasPrefix(body[i:], "--"):
			for i < len(body) && body[i] != '\n' {
				i++
			}
		case c == '/' && strings.HasPrefix(body[i:], "/*"):
			end := strings.Index(body[i+2:], "*/")
			if end < 0 {
				return nil, errors.New("unterminated /* comment")
			}
			i += end + 4
		case c == ';':
			return nil, fmt.Errorf("a query file holds one statement; ';' at byte %d", i)
		case c == '{':
			m := placeholderPattern.FindStringSubmatch(body[i:])
			if m == nil {
				return nil, fmt.Errorf("'{' at byte %d does not open a {name:Type} placeholder", i)
			}
			if start < i {
				parts = append(parts, part{text: body[start:i]})
			}
			parts = append(parts, part{param: m[1], chType: strings.TrimSpace(m[2])})
			i += len(m[0])
			start = i
		default:
			i++
		}
	}
	if start < len(body) {
		parts = append(parts, part{text: body[start:]})
	}
	return parts, nil
}

// skipQuoted returns the index after the quoted string or identifier that starts at
// i. A backslash escapes the next byte and a doubled quote stands for itself, as in
// ClickHouse.
func skipQuoted(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated %c at byte %d", q, i)
}

// bindAll validates every parameter: the given values, and the defaults of the rest.
// A name the query does not declare is an error, so a typo never silently runs the
// query with a default.
func (c *Catalog) bindAll(q *Query, params map[string]string) (map[string]bound, error) {
	var errs []error
	for name := range params {
		if _, ok := q.Param(name); !ok {
			errs = append(errs, fmt.Errorf("query %s has no parameter %q (it has: %s)", q.Name, name, paramNames(q)))
		}
	}
	now := c.now()
	out := make(map[string]bound, len(q.Params))
	for _, p := range q.Params {
		raw, ok := params[p.Name]
		if !ok {
			raw = p.Default
		}
		b, err := p.bind(raw, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[p.Name] = b
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Catalog) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

func paramNames(q *Query) string {
	names := make([]string, 0, len(q.Params))
	for _, p := range q.Params {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Render returns the query's SQL with every parameter bound as a literal of its
// declared type: what runs on ClickHouse 18.16, and on every later version.
func (c *Catalog) Render(name string, params map[string]string) (string, error) {
	q, err := c.Get(name)
	if err != nil {
		return "", err
	}
	values, err := c.bindAll(q, params)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, pt := range q.parts {
		if pt.param == "" {
			b.WriteString(pt.text)
			continue
		}
		b.WriteString(values[pt.param].literal)
	}
	return b.String(), nil
}

// RenderNative returns the query's body unchanged, with its {name:Type} placeholders,
// and the validated value of every parameter as the text a server with native query
// parameters takes (ClickHouse 22.x and later: clickhouse-client --param_<name>=<text>,
// SET param_<name> = '<text>'). That text is read with backslash escapes, so a String
// value comes escaped (a\\b for a\b).
func (c *Catalog) RenderNative(name string, params map[string]string) (string, map[string]string, error) {
	q, err := c.Get(name)
	if err != nil {
		return "", nil, err
	}
	values, err := c.bindAll(q, params)
	if err != nil {
		return "", nil, err
	}
	out := make(map[string]string, len(values))
	for k, v := range values {
		out[k] = v.native
	}
	return q.Body, out, nil
}
