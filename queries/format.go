package queries

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Format is an output format of a Result.
type Format string

// Output formats.
const (
	FormatTable Format = "table"
	FormatCSV   Format = "csv"
	FormatJSON  Format = "json"
)

// ParseFormat checks a format name; "" is the table.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case "":
		return FormatTable, nil
	case FormatTable, FormatCSV, FormatJSON:
		return f, nil
	}
	return "", fmt.Errorf("format %q: use table, csv or json", s)
}

// ContentType is the HTTP media type of the format.
func (f Format) ContentType() string {
	switch f {
	case FormatCSV:
		return "text/csv; charset=utf-8"
	case FormatJSON:
		return "application/json"
	}
	return "text/plain; charset=utf-8"
}

// Write prints the result in the format.
func (r *Result) Write(w io.Writer, f Format) error {
	switch f {
	case FormatCSV:
		return r.writeCSV(w)
	case FormatJSON:
		return r.writeJSON(w)
	case FormatTable, "":
		return r.writeTable(w)
	}
	return fmt.Errorf("format %q: use table, csv or json", f)
}

// Strings returns every cell as Text formats it.
func (r *Result) Strings() [][]string {
	out := make([][]string, len(r.Rows))
	for i, row := range r.Rows {
		out[i] = make([]string, len(row))
		for j, v := range row {
			out[i][j] = Text(v, r.Columns[j].Type)
		}
	}
	return out
}

// Text formats a value as ClickHouse prints it in TSV: times as "2006-01-02 15:04:05"
// (with milliseconds for DateTime64(3)), dates as "2006-01-02", floats in the shortest
// form that reads back exactly.
func Text(v any, chType string) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return x
	case time.Time:
		return formatTime(x, chType)
	case float64:
		return formatFloat(x, 64)
	case float32:
		return formatFloat(float64(x), 32)
	case []byte:
		return string(x)
	case []any:
		parts := make([]string, len(x))
		inner := strings.TrimSuffix(strings.TrimPrefix(chType, "Array("), ")")
		for i, e := range x {
			if s, ok := e.(string); ok {
				parts[i] = QuoteString(s)
			} else {
				parts[i] = Text(e, inner)
			}
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprint(v)
}

func formatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'f', -1, bits)
}

func formatTime(t time.Time, chType string) string {
	t = t.UTC()
	base := strings.TrimPrefix(chType, "Nullable(")
	switch {
	case strings.HasPrefix(base, "Date32"), strings.HasPrefix(base, "Date") && !strings.HasPrefix(base, "DateTime"):
		return t.Format(time.DateOnly)
	case strings.HasPrefix(base, "DateTime64"):
		return t.Format("2006-01-02 15:04:05.000")
	}
	return t.Format(time.DateTime)
}

func (r *Result) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	header := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		header[i] = c.Name
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	if err := cw.WriteAll(r.Strings()); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// writeJSON writes ClickHouse's JSON format: {"meta":[...],"data":[{...}],"rows":n},
// each row an object with the columns in order. Numbers are JSON numbers, times and
// dates strings as Text prints them, NaN and infinities null.
func (r *Result) writeJSON(w io.Writer) error {
	var b bytes.Buffer
	meta, err := json.Marshal(r.Columns)
	if err != nil {
		return err
	}
	b.WriteString(`{"query":`)
	writeJSONValue(&b, r.Query, "")
	b.WriteString(`,"meta":`)
	b.Write(meta)
	b.WriteString(`,"data":[`)
	for i, row := range r.Rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n{")
		for j, v := range row {
			if j > 0 {
				b.WriteByte(',')
			}
			writeJSONValue(&b, r.Columns[j].Name, "")
			b.WriteByte(':')
			writeJSONValue(&b, v, r.Columns[j].Type)
		}
		b.WriteByte('}')
	}
	fmt.Fprintf(&b, "\n],\"rows\":%d}\n", len(r.Rows))
	_, err = w.Write(b.Bytes())
	return err
}

func writeJSONValue(b *bytes.Buffer, v any, chType string) {
	switch x := v.(type) {
	case time.Time:
		v = formatTime(x, chType)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			v = nil
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			v = nil
		}
	case []byte:
		v = string(x)
	case []any:
		inner := strings.TrimSuffix(strings.TrimPrefix(chType, "Array("), ")")
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONValue(b, e, inner)
		}
		b.WriteByte(']')
		return
	}
	enc, err := json.Marshal(v)
	if err != nil {
		enc, _ = json.Marshal(fmt.Sprint(v))
	}
	b.Write(enc)
}

// writeTable writes aligned columns under a header, numbers right-aligned.
func (r *Result) writeTable(w io.Writer) error {
	cells := r.Strings()
	// Keep a row on one line: a newline in a value would break the columns.
	oneLine := strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`)
	for _, row := range cells {
		for i, s := range row {
			row[i] = oneLine.Replace(s)
		}
	}
	width := make([]int, len(r.Columns))
	right := make([]bool, len(r.Columns))
	for i, c := range r.Columns {
		width[i] = utf8.RuneCountInString(c.Name)
		right[i] = numeric(c.Type)
	}
	for _, row := range cells {
		for i, s := range row {
			width[i] = max(width[i], utf8.RuneCountInString(s))
		}
	}
	var b bytes.Buffer
	line := func(vals []string) {
		for i, s := range vals {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(s))
			if right[i] {
				b.WriteString(pad + s)
			} else if i < len(vals)-1 {
				b.WriteString(s + pad)
			} else {
				b.WriteString(s)
			}
		}
		b.WriteByte('\n')
	}
	header := make([]string, len(r.Columns))
	rule := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		header[i] = c.Name
		rule[i] = strings.Repeat("-", width[i])
	}
	line(header)
	line(rule)
	for _, row := range cells {
		line(row)
	}
	if len(r.Rows) == 1 {
		b.WriteString("(1 row)\n")
	} else {
		fmt.Fprintf(&b, "(%d rows)\n", len(r.Rows))
	}
	_, err := w.Write(b.Bytes())
	return err
}

func numeric(chType string) bool {
	t := strings.TrimPrefix(strings.TrimPrefix(chType, "Nullable("), "LowCardinality(")
	for _, p := range []string{"UInt", "Int", "Float", "Decimal"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}
