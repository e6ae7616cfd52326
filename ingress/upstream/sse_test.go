package upstream

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSSEReader(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    []string
		wantErr error
	}{
		{name: "gemini CRLF framing", in: "data: {\"a\":1}\r\n\r\ndata: {\"a\":2}\r\n\r\n", want: []string{`{"a":1}`, `{"a":2}`}, wantErr: io.EOF},
		{name: "LF framing and no space", in: "data:{\"a\":1}\n\n", want: []string{`{"a":1}`}, wantErr: io.EOF},
		{name: "comments and other fields skipped", in: ": ping\nevent: x\ndata: 1\n\n", want: []string{"1"}, wantErr: io.EOF},
		{name: "multi-line data joined", in: "data: a\ndata: b\n\n", want: []string{"a\nb"}, wantErr: io.EOF},
		{name: "last event without blank line", in: "data: 1\n\ndata: 2\n", want: []string{"1", "2"}, wantErr: io.EOF},
		{name: "empty stream", in: "", want: nil, wantErr: io.EOF},
		{name: "long line", in: "data: " + strings.Repeat("x", 100_000) + "\n\n", want: []string{strings.Repeat("x", 100_000)}, wantErr: io.EOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewSSEReader(strings.NewReader(tc.in))
			var got []string
			var err error
			for {
				var b []byte
				b, err = r.Next()
				if err != nil {
					break
				}
				got = append(got, string(b))
			}
			require.Equal(t, tc.want, got)
			require.True(t, errors.Is(err, tc.wantErr), "err %v", err)
		})
	}
}

type cutReader struct {
	data string
	err  error
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.data == "" {
		return 0, c.err
	}
	n := copy(p, c.data)
	c.data = c.data[n:]
	return n, nil
}

func TestSSEReaderCutMidEvent(t *testing.T) {
	r := NewSSEReader(&cutReader{data: "data: 1\r\n\r\ndata: {\"partial", err: errors.New("connection reset by peer")})
	b, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, "1", string(b))
	_, err = r.Next()
	require.Error(t, err)
	require.NotErrorIs(t, err, io.EOF)
}
