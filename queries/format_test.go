package queries

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func sampleResult() *Result {
	at := time.Date(2025, 3, 9, 8, 0, 1, 250e6, time.UTC)
	return &Result{
		Query: "sample",
		Columns: []Column{
			{"model", "String"}, {"day", "Date"}, {"at", "DateTime('UTC')"}, {"at_ms", "DateTime64(3, 'UTC')"},
			{"requests", "UInt64"}, {"rate", "Float64"}, {"keys", "Array(String)"},
		},
		Rows: [][]any{
			{"gemini-2.5-pro", at, at, at, uint64(12), 0.25, []any{"a", "b'c"}},
			{"x,\"y\"\nz", at, at, at, uint64(3), math.NaN(), []any{}},
		},
	}
}

// Each format prints every value as ClickHouse would, and stays parseable.
func TestFormats(t *testing.T) {
	r := sampleResult()
	var b bytes.Buffer
	require.NoError(t, r.Write(&b, FormatTable))
	require.Equal(t, ""+
		`model           day         at                   at_ms                    requests  rate  keys`+"\n"+
		`--------------  ----------  -------------------  -----------------------  --------  ----  ------------`+"\n"+
		`gemini-2.5-pro  2025-03-09  2025-03-09 08:00:01  2025-03-09 08:00:01.250        12  0.25  ['a','b\'c']`+"\n"+
		`x,"y"\nz        2025-03-09  2025-03-09 08:00:01  2025-03-09 08:00:01.250         3   nan  []`+"\n"+
		"(2 rows)\n", b.String())

	b.Reset()
	require.NoError(t, r.Write(&b, FormatCSV))
	require.Equal(t, "model,day,at,at_ms,requests,rate,keys\n"+
		"gemini-2.5-pro,2025-03-09,2025-03-09 08:00:01,2025-03-09 08:00:01.250,12,0.25,\"['a','b\\'c']\"\n"+
		"\"x,\"\"y\"\"\nz\",2025-03-09,2025-03-09 08:00:01,2025-03-09 08:00:01.250,3,nan,[]\n", b.String())

	b.Reset()
	require.NoError(t, r.Write(&b, FormatJSON))
	var doc struct {
		Query string           `json:"query"`
		Meta  []Column         `json:"meta"`
		Data  []map[string]any `json:"data"`
		Rows  int              `json:"rows"`
	}
	require.NoError(t, json.Unmarshal(b.Bytes(), &doc), b.String())
	require.Equal(t, "sample", doc.Query)
	require.Equal(t, r.Columns, doc.Meta)
	require.Equal(t, 2, doc.Rows)
	require.Equal(t, map[string]any{"model": "gemini-2.5-pro", "day": "2025-03-09", "at": "2025-03-09 08:00:01",
		"at_ms": "2025-03-09 08:00:01.250", "requests": 12.0, "rate": 0.25, "keys": []any{"a", "b'c"}}, doc.Data[0])
	require.Nil(t, doc.Data[1]["rate"], "NaN is null")
	require.Contains(t, b.String(), `{"model":"gemini-2.5-pro","day"`, "columns keep their order")

	_, err := ParseFormat("xml")
	require.Error(t, err)
	f, err := ParseFormat("")
	require.NoError(t, err)
	require.Equal(t, FormatTable, f)
}
