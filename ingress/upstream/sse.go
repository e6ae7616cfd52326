package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxEventBytes bounds one SSE event from upstream; a larger one is treated as a broken
// stream rather than buffered without limit.
const maxEventBytes = 8 << 20

// ErrEventTooLarge is returned when an upstream SSE event exceeds maxEventBytes.
var ErrEventTooLarge = errors.New("upstream event too large")

// SSEReader reads the data payloads of a server-sent event stream, as Gemini's
// streamGenerateContent?alt=sse sends them: "data: {json}" lines, events separated by a
// blank line (Gemini uses CRLF). Comment lines and other fields are skipped; a multi-line
// data field is joined with "\n" as the SSE specification says.
type SSEReader struct {
	r   *bufio.Reader
	buf []byte
}

// NewSSEReader wraps an upstream body.
func NewSSEReader(r io.Reader) *SSEReader {
	return &SSEReader{r: bufio.NewReaderSize(r, 32<<10)}
}

// Next returns the next event's data. The slice is valid until the next call. At the
// clean end of the stream it returns io.EOF; a stream cut inside an event returns
// io.ErrUnexpectedEOF.
func (s *SSEReader) Next() ([]byte, error) {
	s.buf = s.buf[:0]
	have := false
	for {
		line, err := s.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: collect the rest of it.
			long := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				if len(long) > maxEventBytes {
					return nil, ErrEventTooLarge
				}
				line, err = s.r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
			if errors.Is(err, io.EOF) {
				if have {
					// The last event lacked its blank line; the data is whole.
					return s.buf, nil
				}
				return nil, io.EOF
			}
			if have {
				return nil, fmt.Errorf("read upstream stream: %w", io.ErrUnexpectedEOF)
			}
			return nil, fmt.Errorf("read upstream stream: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if have {
				return s.buf, nil
			}
			if err != nil {
				return nil, io.EOF
			}
			continue
		}
		if data, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			data = bytes.TrimPrefix(data, []byte(" "))
			if have {
				s.buf = append(s.buf, '\n')
			}
			s.buf = append(s.buf, data...)
			have = true
			if len(s.buf) > maxEventBytes {
				return nil, ErrEventTooLarge
			}
		}
		if err != nil { // EOF after a final line without newline
			if have {
				return s.buf, nil
			}
			return nil, io.EOF
		}
	}
}
