package queries

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind is a parameter's base type.
type Kind int

// Parameter kinds.
const (
	KindInt Kind = iota + 1
	KindUInt
	KindFloat
	KindString
	KindDate
	KindDateTime
	KindIdentifier
)

var kindNames = map[Kind]string{
	KindInt: "Int", KindUInt: "UInt", KindFloat: "Float", KindString: "String",
	KindDate: "Date", KindDateTime: "DateTime", KindIdentifier: "Identifier",
}

func (k Kind) String() string { return kindNames[k] }

// chType is how the body's placeholder names the kind: ClickHouse's own type, so the
// file runs with native parameters. DateTime is pinned to UTC, so a value means the
// same instant whatever the server's time zone.
func (k Kind) chType() string {
	switch k {
	case KindInt:
		return "Int64"
	case KindUInt:
		return "UInt64"
	case KindFloat:
		return "Float64"
	case KindDateTime:
		return "DateTime('UTC')"
	}
	return k.String()
}

// Type is a parameter's declared type with its constraint.
type Type struct {
	Kind Kind
	// Values restricts a String to these values; for an Identifier it is the
	// allow-list (required).
	Values []string
	// Bounded numbers lie in [Lo, Hi] (as declared; compared in the kind's own type).
	Bounded bool
	Lo, Hi  string
}

func (t Type) String() string {
	switch {
	case len(t.Values) > 0:
		return t.Kind.String() + "(" + strings.Join(t.Values, "|") + ")"
	case t.Bounded:
		return t.Kind.String() + "(" + t.Lo + ".." + t.Hi + ")"
	}
	return t.Kind.String()
}

// MarshalJSON writes the type as it is declared, e.g. "UInt(1..1440)".
func (t Type) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// Param is a declared parameter.
type Param struct {
	Name        string `json:"name"`
	Type        Type   `json:"type"`
	Default     string `json:"default"`
	Description string `json:"description"`
}

var (
	identPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	typePattern  = regexp.MustCompile(`^([A-Za-z]+)(?:\((.*)\))?$`)
)

// parseParam parses `<name> <type> <default> <description>`.
func parseParam(s string) (Param, error) {
	f := strings.Fields(s)
	if len(f) < 4 {
		return Param{}, fmt.Errorf("@param %q: want <name> <type> <default> <description>", s)
	}
	p := Param{Name: f[0], Default: f[2], Description: strings.Join(f[3:], " ")}
	if !identPattern.MatchString(p.Name) {
		return Param{}, fmt.Errorf("@param name %q is not an identifier", p.Name)
	}
	t, err := parseType(f[1])
	if err != nil {
		return Param{}, fmt.Errorf("@param %s: %w", p.Name, err)
	}
	p.Type = t
	if p.Default == "''" {
		p.Default = ""
	}
	// The default must itself be a valid value (relative times are checked against
	// a fixed clock).
	if _, err := p.bind(p.Default, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		return Param{}, fmt.Errorf("@param %s: default: %w", p.Name, err)
	}
	return p, nil
}

func parseType(s string) (Type, error) {
	m := typePattern.FindStringSubmatch(s)
	if m == nil {
		return Type{}, fmt.Errorf("type %q: want Name or Name(constraint)", s)
	}
	var t Type
	for k, n := range kindNames {
		if n == m[1] {
			t.Kind = k
		}
	}
	if t.Kind == 0 {
		return Type{}, fmt.Errorf("type %q: unknown (Int, UInt, Float, String, Date, DateTime, Identifier)", m[1])
	}
	c := m[2]
	switch t.Kind {
	case KindString, KindIdentifier:
		if c == "" {
			if t.Kind == KindIdentifier {
				return Type{}, errors.New("an Identifier needs its allow-list: Identifier(a|b)")
			}
			return t, nil
		}
		for _, v := range strings.Split(c, "|") {
			if !identPattern.MatchString(v) {
				return Type{}, fmt.Errorf("type %s: allowed value %q must be an identifier", s, v)
			}
			t.Values = append(t.Values, v)
		}
	case KindInt, KindUInt, KindFloat:
		if c == "" {
			return t, nil
		}
		lo, hi, ok := strings.Cut(c, "..")
		if !ok {
			return Type{}, fmt.Errorf("type %s: want %s(lo..hi)", s, m[1])
		}
		t.Bounded, t.Lo, t.Hi = true, lo, hi
		probe := Type{Kind: t.Kind}
		if _, err := probe.number(lo); err != nil {
			return Type{}, fmt.Errorf("type %s: lower bound: %w", s, err)
		}
		if _, err := probe.number(hi); err != nil {
			return Type{}, fmt.Errorf("type %s: upper bound: %w", s, err)
		}
	default:
		if c != "" {
			return Type{}, fmt.Errorf("type %s takes no constraint", s)
		}
	}
	return t, nil
}

// bound is a validated value: as a SQL literal of its type, and as the text a
// native query parameter takes.
type bound struct {
	literal string
	native  string
}

// maxStringBytes bounds a String value; no filter needs more.
const maxStringBytes = 1024

// bind validates a raw value against the parameter's type.
func (p Param) bind(raw string, now time.Time) (bound, error) {
	b, err := p.Type.bind(raw, now)
	if err != nil {
		return bound{}, fmt.Errorf("parameter %s (%s): %w", p.Name, p.Type, err)
	}
	return b, nil
}

func (t Type) bind(raw string, now time.Time) (bound, error) {
	switch t.Kind {
	case KindInt, KindUInt, KindFloat:
		s, err := t.number(raw)
		if err != nil {
			return bound{}, err
		}
		if t.Bounded {
			if err := t.inBounds(raw); err != nil {
				return bound{}, err
			}
		}
		switch t.Kind {
		case KindInt:
			// toInt64(): a literal of the declared type, and a negative value can
			// never merge with a minus sign before it.
			return bound{literal: "toInt64(" + s + ")", native: s}, nil
		case KindFloat:
			return bound{literal: "toFloat64(" + s + ")", native: s}, nil
		}
		// A bare literal: LIMIT takes nothing else on 18.16. Digits only.
		return bound{literal: s, native: s}, nil
	case KindString:
		if len(raw) > maxStringBytes {
			return bound{}, fmt.Errorf("%d bytes is longer than %d", len(raw), maxStringBytes)
		}
		if !utf8.ValidString(raw) {
			return bound{}, errors.New("not valid UTF-8")
		}
		if len(t.Values) > 0 && !contains(t.Values, raw) {
			return bound{}, fmt.Errorf("%q is not one of %s", raw, strings.Join(t.Values, ", "))
		}
		// A native parameter's text is read with backslash escapes (as a TSV field),
		// so it is escaped the same way, without the quotes.
		lit := QuoteString(raw)
		return bound{literal: lit, native: lit[1 : len(lit)-1]}, nil
	case KindIdentifier:
		// Only names from the allow-list, which parseType checked are identifiers:
		// the backquotes can never be closed by the value.
		if !contains(t.Values, raw) {
			return bound{}, fmt.Errorf("%q is not one of %s", raw, strings.Join(t.Values, ", "))
		}
		return bound{literal: "`" + raw + "`", native: raw}, nil
	case KindDate:
		d, err := parseDate(raw, now)
		if err != nil {
			return bound{}, err
		}
		s := d.Format(time.DateOnly)
		return bound{literal: "toDate('" + s + "')", native: s}, nil
	case KindDateTime:
		ts, err := parseDateTime(raw, now)
		if err != nil {
			return bound{}, err
		}
		s := ts.Format(time.DateTime)
		return bound{literal: "toDateTime('" + s + "', 'UTC')", native: s}, nil
	}
	return bound{}, fmt.Errorf("kind %d unknown", t.Kind)
}

// number parses a number of the type's kind and returns its canonical text.
func (t Type) number(raw string) (string, error) {
	switch t.Kind {
	case KindInt:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not a 64-bit integer", raw)
		}
		return strconv.FormatInt(n, 10), nil
	case KindUInt:
		n, err := strconv.ParseUint(raw, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not an unsigned 64-bit integer", raw)
		}
		return strconv.FormatUint(n, 10), nil
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("%q is not a finite number", raw)
	}
	return strconv.FormatFloat(f, 'g', -1, 64), nil
}

func (t Type) inBounds(raw string) error {
	var below, above bool
	switch t.Kind {
	case KindInt:
		v, _ := strconv.ParseInt(raw, 10, 64)
		lo, _ := strconv.ParseInt(t.Lo, 10, 64)
		hi, _ := strconv.ParseInt(t.Hi, 10, 64)
		below, above = v < lo, v > hi
	case KindUInt:
		v, _ := strconv.ParseUint(raw, 10, 64)
		lo, _ := strconv.ParseUint(t.Lo, 10, 64)
		hi, _ := strconv.ParseUint(t.Hi, 10, 64)
		below, above = v < lo, v > hi
	default:
		v, _ := strconv.ParseFloat(raw, 64)
		lo, _ := strconv.ParseFloat(t.Lo, 64)
		hi, _ := strconv.ParseFloat(t.Hi, 64)
		below, above = v < lo, v > hi
	}
	if below || above {
		return fmt.Errorf("%s is not in %s..%s", raw, t.Lo, t.Hi)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// QuoteString returns s as a ClickHouse string literal. Backslash and single quote are
// escaped, and so is every control character, so the literal is one line whatever s
// holds and no byte of s can end it. ClickHouse 18.16 and current versions read the
// same escapes.
func QuoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case 0:
			b.WriteString(`\0`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(&b, `\x%02X`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// DateTime is 32-bit seconds in ClickHouse: 1970-01-01 .. 2106-02-07.
var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Unix(math.MaxUint32, 0).UTC()
)

var relPattern = regexp.MustCompile(`^(now|today)(?:([+-])(\d{1,6})([smhdw]))?$`)

// relative parses now[±N unit] and today[±N unit] (today is the current UTC midnight).
func relative(raw string, now time.Time) (time.Time, bool) {
	m := relPattern.FindStringSubmatch(raw)
	if m == nil {
		return time.Time{}, false
	}
	t := now.UTC()
	if m[1] == "today" {
		t = t.Truncate(24 * time.Hour)
	}
	if m[2] == "" {
		return t, true
	}
	n, _ := strconv.Atoi(m[3])
	if m[2] == "-" {
		n = -n
	}
	switch m[4] {
	case "s":
		t = t.Add(time.Duration(n) * time.Second)
	case "m":
		t = t.Add(time.Duration(n) * time.Minute)
	case "h":
		t = t.Add(time.Duration(n) * time.Hour)
	case "d":
		t = t.AddDate(0, 0, n)
	case "w":
		t = t.AddDate(0, 0, 7*n)
	}
	return t, true
}

// parseDateTime reads an instant; sub-seconds are cut (DateTime holds seconds).
func parseDateTime(raw string, now time.Time) (time.Time, error) {
	t, ok := relative(raw, now)
	if !ok {
		t, ok = parseAbsolute(raw)
	}
	if !ok {
		return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339, YYYY-MM-DD hh:mm:ss (UTC), YYYY-MM-DD, Unix seconds, or now-24h style", raw)
	}
	t = t.UTC().Truncate(time.Second)
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, fmt.Errorf("%s is outside %s..%s", t.Format(time.DateTime), minTime.Format(time.DateTime), maxTime.Format(time.DateTime))
	}
	return t, nil
}

func parseAbsolute(raw string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", time.DateOnly} {
		loc := time.UTC
		if t, err := time.ParseInLocation(layout, raw, loc); err == nil {
			return t, true
		}
	}
	if raw != "" && len(raw) <= 10 && strings.Trim(raw, "0123456789") == "" {
		n, _ := strconv.ParseInt(raw, 10, 64)
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}

// parseDate reads a UTC day.
func parseDate(raw string, now time.Time) (time.Time, error) {
	if m := relPattern.FindStringSubmatch(raw); m != nil {
		if m[4] != "" && m[4] != "d" && m[4] != "w" {
			return time.Time{}, fmt.Errorf("%q: a date moves in days (d) or weeks (w)", raw)
		}
		t, _ := relative(raw, now)
		return t.Truncate(24 * time.Hour), nil
	}
	t, err := time.ParseInLocation(time.DateOnly, raw, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date: use YYYY-MM-DD, today or today-7d", raw)
	}
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, fmt.Errorf("%s is outside %s..%s", raw, minTime.Format(time.DateOnly), maxTime.Format(time.DateOnly))
	}
	return t, nil
}
