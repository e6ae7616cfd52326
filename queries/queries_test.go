package queries

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"
)

// The embedded files parse, and each is what the catalog lists.
func TestBuiltinCatalog(t *testing.T) {
	c, err := Builtin()
	require.NoError(t, err)
	var names []string
	for _, q := range c.List() {
		names = append(names, q.Name)
		require.NotEmpty(t, q.Summary, q.Name)
		require.NotEmpty(t, q.Description, q.Name)
		require.NotEmpty(t, q.Examples, "%s: every query shows an example", q.Name)
		for _, p := range q.Params {
			require.NotEmpty(t, p.Description, "%s.%s", q.Name, p.Name)
		}
		// Every example's parameters exist and bind.
		for _, ex := range q.Examples {
			params := map[string]string{}
			f := strings.Fields(ex)
			for i := 0; i < len(f); i++ {
				require.Equal(t, "--param", f[i], "%s example %q", q.Name, ex)
				k, v, ok := strings.Cut(f[i+1], "=")
				require.True(t, ok, ex)
				params[k] = v
				i++
			}
			_, err := c.Render(q.Name, params)
			require.NoError(t, err, "%s example %q", q.Name, ex)
		}
	}
	require.Equal(t, []string{
		"duplicates", "error_breakdown", "key_health_ranking", "key_metrics", "latency_percentiles",
		"quota_usage", "rate_limit_timeline", "storage_metrics", "storage_recommendations",
		"stream_interruptions", "system_stats", "token_usage", "top_clients",
	}, names)
	_, err = Get("nope")
	require.ErrorIs(t, err, ErrUnknownQuery)
}

// Header mistakes are caught when the catalog loads, each with what is wrong.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"no summary", "SELECT 1", "no summary"},
		{"no sql", "-- s\n", "no SQL"},
		{"undeclared placeholder", "-- s\nSELECT {x:String}", "has no @param"},
		{"unused param", "-- s\n-- @param x String '' d\nSELECT 1", "never used"},
		{"placeholder type differs", "-- s\n-- @param x UInt 1 d\nSELECT {x:Int64}", "is written {x:UInt64}"},
		{"two statements", "-- s\nSELECT 1; DROP TABLE t", "one statement"},
		{"stray brace", "-- s\nSELECT {1}", "does not open"},
		{"unknown type", "-- s\n-- @param x Text '' d\nSELECT {x:Text}", "unknown"},
		{"bad default", "-- s\n-- @param x UInt abc d\nSELECT {x:UInt64}", "default"},
		{"default outside enum", "-- s\n-- @param x String(a|b) c d\nSELECT {x:String}", "not one of"},
		{"identifier without allow-list", "-- s\n-- @param t Identifier t d\nSELECT 1 FROM {t:Identifier}", "allow-list"},
		{"allow-list entry not an identifier", "-- s\n-- @param t Identifier(a|b;c) a d\nSELECT 1 FROM {t:Identifier}", "must be an identifier"},
		{"duplicate param", "-- s\n-- @param x UInt 1 d\n-- @param x UInt 1 d\nSELECT {x:UInt64}", "declared twice"},
		{"missing description", "-- s\n-- @param x UInt 1\nSELECT {x:UInt64}", "want <name>"},
		{"unknown tag", "-- s\n-- @pram x UInt 1 d\nSELECT 1", "unknown header tag"},
		{"unterminated string", "-- s\nSELECT 'abc", "unterminated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("q", tc.src)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := Parse("Bad-Name", "-- s\nSELECT 1")
	require.ErrorContains(t, err, "name must match")
}

// Placeholders inside strings, quoted identifiers and comments are text, not
// parameters.
func TestPlaceholdersOnlyInCode(t *testing.T) {
	q, err := Parse("q", "-- s\n-- @param x UInt 1 d\nSELECT '{x:UInt64}', `{y}`, \"{z}\" -- {w}\n/* {v} */, {x:UInt64}, 'it''s {x}', 'a\\'{b}'")
	require.NoError(t, err)
	c := &Catalog{queries: map[string]*Query{"q": q}, names: []string{"q"}}
	sql, err := c.Render("q", map[string]string{"x": "7"})
	require.NoError(t, err)
	require.Equal(t, "SELECT '{x:UInt64}', `{y}`, \"{z}\" -- {w}\n/* {v} */, 7, 'it''s {x}', 'a\\'{b}'", sql)
}

func testCatalog(t *testing.T, files map[string]string) *Catalog {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, src := range files {
		fsys[name+".sql"] = &fstest.MapFile{Data: []byte(src)}
	}
	c, err := Load(fsys)
	require.NoError(t, err)
	c.Now = func() time.Time { return time.Date(2025, 3, 9, 10, 30, 45, 500e6, time.UTC) }
	return c
}

// Every type binds valid values as literals of that type and refuses the rest.
func TestBind(t *testing.T) {
	c := testCatalog(t, map[string]string{"q": `-- s
-- @param i  Int                  0        d
-- @param u  UInt(1..100)         5        d
-- @param f  Float                0.5      d
-- @param s  String               ''       d
-- @param e  String(minute|day)   minute   d
-- @param d  Date                 today-7d d
-- @param t  DateTime             now-1h   d
-- @param id Identifier(a_b|c)    a_b      d
SELECT {i:Int64}, {u:UInt64}, {f:Float64}, {s:String}, {e:String}, {d:Date}, {t:DateTime('UTC')}, {id:Identifier}`})
	render := func(params map[string]string) (string, error) { return c.Render("q", params) }

	sql, err := render(nil)
	require.NoError(t, err)
	require.Equal(t, "SELECT toInt64(0), 5, toFloat64(0.5), '', 'minute', toDate('2025-03-02'), toDateTime('2025-03-09 09:30:45', 'UTC'), `a_b`", sql)

	for _, tc := range []struct {
		param, value, want string
	}{
		{"i", "-9223372036854775808", "toInt64(-9223372036854775808)"},
		{"i", "+42", "toInt64(42)"},
		{"u", "100", "100"},
		{"u", "007", "7"},
		{"f", "-1.5e-7", "toFloat64(-1.5e-07)"},
		{"f", "3", "toFloat64(3)"},
		{"s", "gemini-2.5-pro", "'gemini-2.5-pro'"},
		{"s", "日本語", "'日本語'"},
		{"e", "day", "'day'"},
		{"d", "2024-02-29", "toDate('2024-02-29')"},
		{"d", "today", "toDate('2025-03-09')"},
		{"d", "today+1w", "toDate('2025-03-16')"},
		{"t", "2025-03-09T08:00:00Z", "toDateTime('2025-03-09 08:00:00', 'UTC')"},
		{"t", "2025-03-09T00:00:00-08:00", "toDateTime('2025-03-09 08:00:00', 'UTC')"},
		{"t", "2025-03-09 08:00:00.999", "toDateTime('2025-03-09 08:00:00', 'UTC')"},
		{"t", "2025-03-09", "toDateTime('2025-03-09 00:00:00', 'UTC')"},
		{"t", "1741507200", "toDateTime('2025-03-09 08:00:00', 'UTC')"},
		{"t", "now", "toDateTime('2025-03-09 10:30:45', 'UTC')"},
		{"t", "now-15m", "toDateTime('2025-03-09 10:15:45', 'UTC')"},
		{"t", "today", "toDateTime('2025-03-09 00:00:00', 'UTC')"},
		{"t", "now-2d", "toDateTime('2025-03-07 10:30:45', 'UTC')"},
		{"id", "c", "`c`"},
	} {
		sql, err := render(map[string]string{tc.param: tc.value})
		require.NoError(t, err, "%s=%q", tc.param, tc.value)
		require.Contains(t, sql, tc.want, "%s=%q", tc.param, tc.value)
	}

	for _, tc := range []struct {
		param, value, want string
	}{
		{"i", "1.5", "not a 64-bit integer"},
		{"i", "9223372036854775808", "not a 64-bit integer"},
		{"i", "1 OR 1=1", "not a 64-bit integer"},
		{"u", "-1", "not an unsigned"},
		{"u", "0", "not in 1..100"},
		{"u", "101", "not in 1..100"},
		{"u", "5; DROP TABLE request_logs", "not an unsigned"},
		{"f", "NaN", "not a finite number"},
		{"f", "Inf", "not a finite number"},
		{"f", "1e400", "not a finite number"},
		{"f", "0x1p-2) OR (1", "not a finite number"},
		{"s", strings.Repeat("x", 1025), "longer than 1024"},
		{"s", "\xff\xfe", "not valid UTF-8"},
		{"e", "week", "not one of minute, day"},
		{"e", "minute' OR '1'='1", "not one of"},
		{"d", "2025-02-30", "not a date"},
		{"d", "today-1h", "days (d) or weeks"},
		{"d", "toDate('2025-01-01')", "not a date"},
		{"t", "yesterday", "not a time"},
		{"t", "2025-03-09 08:00:00') OR ('1", "not a time"},
		{"t", "1969-12-31T23:59:59Z", "outside"},
		{"t", "2200-01-01", "outside"},
		{"id", "request_logs", "not one of"},
		{"id", "a_b` UNION ALL SELECT 1 --", "not one of"},
		{"id", "A_B", "not one of"},
	} {
		_, err := render(map[string]string{tc.param: tc.value})
		require.ErrorContains(t, err, tc.want, "%s=%q", tc.param, tc.value)
	}

	_, err = render(map[string]string{"nope": "1", "u": "0"})
	require.ErrorContains(t, err, `no parameter "nope"`)
	require.ErrorContains(t, err, "not in 1..100", "every problem is reported at once")

	body, native, err := c.RenderNative("q", map[string]string{"s": "x'y\\z", "t": "2025-03-09T08:00:00Z"})
	require.NoError(t, err)
	require.Contains(t, body, "{t:DateTime('UTC')}")
	require.Equal(t, map[string]string{
		"i": "0", "u": "5", "f": "0.5", "s": `x\'y\\z`, "e": "minute", "d": "2025-03-02",
		"t": "2025-03-09 08:00:00", "id": "a_b",
	}, native)
}

// hostile holds strings that try to end a string literal early, hide code in comments
// or confuse a parser's escape handling.
var hostile = []string{
	`'`,
	`\`,
	`\'`,
	`\\'`,
	`' OR '1'='1`,
	`'; DROP TABLE request_logs; --`,
	`x' UNION ALL SELECT name FROM system.tables --`,
	`\' OR 1=1 --`,
	`''`,
	`'' OR ''=''`,
	"a\nb\r\nc\td",
	"nul\x00byte",
	"bell\x07 del\x7f esc\x1b",
	`{x:String}`,
	`/* comment */ --`,
	"`backquote` \"double\"",
	`%s %d %!`,
	"😀 ñ 日本",
	`\x27 \u0027 \047`,
}

// unquote decodes a ClickHouse string literal that QuoteString produced.
func unquote(t *testing.T, lit string) string {
	t.Helper()
	require.True(t, len(lit) >= 2 && lit[0] == '\'' && lit[len(lit)-1] == '\'', lit)
	var b strings.Builder
	for i := 1; i < len(lit)-1; i++ {
		c := lit[i]
		require.NotEqual(t, byte('\''), c, "an unescaped quote inside %s", lit)
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		switch lit[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case '0':
			b.WriteByte(0)
		case 'x':
			var v byte
			for _, h := range lit[i+1 : i+3] {
				v = v*16 + byte(strings.IndexRune("0123456789ABCDEF", h))
			}
			b.WriteByte(v)
			i += 2
		default:
			b.WriteByte(lit[i])
		}
	}
	return b.String()
}

// A hostile value stays inside its literal: the literal ends exactly where it was
// placed, decodes to the value, and the rest of the query is unchanged.
func TestStringEscaping(t *testing.T) {
	c := testCatalog(t, map[string]string{"q": "-- s\n-- @param s String '' d\nSELECT {s:String} AS v FROM t WHERE 1"})
	for _, v := range hostile {
		sql, err := c.Render("q", map[string]string{"s": v})
		require.NoError(t, err, "%q", v)
		require.True(t, strings.HasPrefix(sql, "SELECT '"), sql)
		require.True(t, strings.HasSuffix(sql, "' AS v FROM t WHERE 1"), sql)
		lit := strings.TrimSuffix(strings.TrimPrefix(sql, "SELECT "), " AS v FROM t WHERE 1")
		end, err := skipQuoted(lit, 0)
		require.NoError(t, err)
		require.Equal(t, len(lit), end, "the literal of %q ends early: %s", v, lit)
		require.Equal(t, v, unquote(t, lit))
		require.NotContains(t, lit, "\n", "one line")
		// The whole rendering still lexes as one statement with no placeholder.
		parts, err := split(sql)
		require.NoError(t, err)
		require.Len(t, parts, 1)
	}
}

func FuzzQuoteString(f *testing.F) {
	for _, v := range hostile {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		lit := QuoteString(v)
		end, err := skipQuoted(lit, 0)
		require.NoError(t, err)
		require.Equal(t, len(lit), end)
		require.Equal(t, v, unquote(t, lit))
	})
}
