package upstream

import (
	"context"
	"io"
	"sync"
	"time"
)

// Stream is an upstream streamGenerateContent response whose first event has already
// arrived (so the request could still fail over before it). The caller reads events
// with Next and must Close it.
type Stream struct {
	sse    *SSEReader
	body   io.Closer
	cancel context.CancelFunc
	first  []byte
	idle   time.Duration

	mu    sync.Mutex
	timer *time.Timer
}

func newStream(sse *SSEReader, body io.Closer, cancel context.CancelFunc, first []byte, idle time.Duration) *Stream {
	s := &Stream{sse: sse, body: body, cancel: cancel, first: append([]byte(nil), first...), idle: idle}
	if idle > 0 {
		// Gemini can think for a long while between chunks, so the idle limit is
		// generous; it exists so a silent upstream cannot hold a stream forever.
		s.timer = time.AfterFunc(idle, cancel)
	}
	return s
}

// Next returns the next event's JSON. The first call returns the event read before the
// stream was handed over. It returns io.EOF at the clean end of the stream; any other
// error means the upstream cut the stream.
func (s *Stream) Next() ([]byte, error) {
	if s.first != nil {
		b := s.first
		s.first = nil
		return b, nil
	}
	b, err := s.sse.Next()
	if err == nil && s.timer != nil {
		s.timer.Reset(s.idle)
	}
	return b, err
}

// Close releases the upstream connection.
func (s *Stream) Close() error {
	if s.timer != nil {
		s.timer.Stop()
	}
	s.cancel()
	return s.body.Close()
}
