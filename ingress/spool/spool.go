// Package spool is the ingress's write-ahead log of events: every event is appended to a
// segment file on local disk before the request that produced it is acknowledged, and a
// shipper reads the log in order and hands it to Kafka. The same log is the bounded
// spool that absorbs a Kafka outage: when the broker is away, appends continue and the
// shipper drains the backlog, in order, when it returns.
//
// Delivery guarantee: an event appended here survives a crash of the process (SIGKILL)
// because the write(2) has reached the kernel's page cache before Append returns; with
// Options.Sync it also survives a power loss, at the cost of an fsync per append. After a
// restart the shipper resumes from the last persisted cursor, so events shipped after
// the cursor was last saved are shipped again: consumers deduplicate on event_id.
//
// Record format, repeated in each segment: u32 payload length, u32 CRC-32C of the
// payload, then the payload (uvarint topic length, topic, uvarint key length, key,
// value). A torn record at the end of the last segment (a crash mid-write) is ignored.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ErrFull is returned by Append when the spool holds MaxBytes not yet acknowledged.
var ErrFull = errors.New("spool full")

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("spool closed")

const (
	headerSize   = 8
	segmentExt   = ".seg"
	cursorFile   = "cursor"
	maxRecordLen = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configure a spool.
type Options struct {
	// SegmentBytes is the size after which a new segment file starts. Default 16 MiB.
	SegmentBytes int64
	// MaxBytes bounds the bytes appended but not yet acknowledged. Default 1 GiB.
	MaxBytes int64
	// Sync makes every Append fsync the segment.
	Sync bool
}

func (o *Options) defaults() {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 16 << 20
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 30
	}
}

// Position addresses a record: the segment's base sequence and the byte offset in it.
type Position struct {
	Segment uint64
	Offset  int64
}

// Record is one event as stored.
type Record struct {
	Topic string
	Key   []byte
	Value []byte
	// Next is the position just after this record; acknowledging it acknowledges this
	// record and every one before it.
	Next Position
}

type segment struct {
	base uint64
	size int64 // bytes of complete records
}

// Spool is a directory of segment files. It is safe for concurrent use: any number of
// goroutines Append, one goroutine reads (Read) and acknowledges (Ack).
type Spool struct {
	dir  string
	opts Options

	mu       sync.Mutex
	segs     []segment // ordered by base; the last is being appended to
	active   *os.File
	acked    Position
	pending  int64 // bytes appended and not acknowledged
	closed   bool
	notify   chan struct{}
	readFile *os.File
	readSeg  uint64
	// cursor is the open cursor file, rewritten in place on every Ack.
	cursor *os.File
	// recovered is the end of the log when Open found it: records before it were
	// appended by an earlier process, which may have shipped them.
	recovered Position
	// truncated counts the bytes Open dropped after the last good record of a segment.
	truncated int64
}

// Open opens or creates the spool in dir and recovers its state: segments are scanned
// to their last complete record and the read position starts at the saved cursor.
func Open(dir string, opts Options) (*Spool, error) {
	opts.defaults()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create spool dir %s: %w", dir, err)
	}
	s := &Spool{dir: dir, opts: opts, notify: make(chan struct{}, 1)}
	bases, err := s.listSegments()
	if err != nil {
		return nil, err
	}
	for _, b := range bases {
		size, err := s.scanSegment(b)
		if err != nil {
			return nil, err
		}
		s.segs = append(s.segs, segment{base: b, size: size})
	}
	cur, err := s.loadCursor()
	if err != nil {
		return nil, err
	}
	s.acked = cur
	// Drop segments wholly before the cursor (a crash between saving it and deleting).
	for len(s.segs) > 1 && s.segs[0].base < cur.Segment {
		if err := os.Remove(s.segPath(s.segs[0].base)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove acknowledged segment: %w", err)
		}
		s.segs = s.segs[1:]
	}
	if len(s.segs) == 0 || s.acked.Segment < s.segs[0].base {
		base := s.acked.Segment
		if len(s.segs) > 0 {
			base = s.segs[0].base
		}
		s.acked = Position{Segment: base}
	}
	if err := s.openActive(); err != nil {
		return nil, err
	}
	last := s.segs[len(s.segs)-1]
	s.recovered = Position{Segment: last.base, Offset: last.size}
	if s.cursor, err = os.OpenFile(filepath.Join(dir, cursorFile), os.O_RDWR|os.O_CREATE, 0o640); err != nil {
		_ = s.active.Close()
		return nil, fmt.Errorf("open spool cursor: %w", err)
	}
	s.pending = s.bytesAfter(s.acked)
	return s, nil
}

// Recovered is the end of the log when Open found it. A record whose Next is not after
// it was appended by an earlier process: if that process shipped it without saving the
// cursor past it, it is shipped again now.
func (s *Spool) Recovered() Position { return s.recovered }

// After reports whether p is later in the log than q.
func (p Position) After(q Position) bool {
	return p.Segment > q.Segment || p.Segment == q.Segment && p.Offset > q.Offset
}

func (s *Spool) segPath(base uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", base, segmentExt))
}

func (s *Spool) listSegments() ([]uint64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list spool dir %s: %w", s.dir, err)
	}
	var bases []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, segmentExt) {
			continue
		}
		b, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 10, 64)
		if err != nil {
			continue
		}
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}

// scanSegment returns the length of the segment's complete, checksummed records and
// truncates a torn tail so appends continue from a clean boundary.
func (s *Spool) scanSegment(base uint64) (int64, error) {
	f, err := os.OpenFile(s.segPath(base), os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("open segment %d: %w", base, err)
	}
	defer f.Close()
	var off int64
	hdr := make([]byte, headerSize)
	var buf []byte
	for {
		if _, err := f.ReadAt(hdr, off); err != nil {
			break
		}
		n := binary.LittleEndian.Uint32(hdr[0:4])
		if n > maxRecordLen {
			break
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := f.ReadAt(buf, off+headerSize); err != nil {
			break
		}
		if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(hdr[4:8]) {
			break
		}
		off += headerSize + int64(n)
	}
	if st, err := f.Stat(); err == nil && st.Size() > off {
		// Usually a torn tail (a crash mid-write, a few bytes). More than one record's
		// worth after a bad checksum is corruption: the bytes are dropped all the same,
		// since nothing after a bad record can be trusted, but they are counted so the
		// operator hears of it (TruncatedBytes).
		s.truncated += st.Size() - off
		if err := f.Truncate(off); err != nil {
			return 0, fmt.Errorf("truncate torn tail of segment %d: %w", base, err)
		}
	}
	return off, nil
}

func (s *Spool) openActive() error {
	if len(s.segs) == 0 {
		s.segs = append(s.segs, segment{base: s.acked.Segment})
	}
	last := s.segs[len(s.segs)-1]
	f, err := os.OpenFile(s.segPath(last.base), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open active segment: %w", err)
	}
	s.active = f
	return nil
}

func (s *Spool) bytesAfter(p Position) int64 {
	var n int64
	for _, sg := range s.segs {
		switch {
		case sg.base > p.Segment:
			n += sg.size
		case sg.base == p.Segment:
			n += sg.size - p.Offset
		}
	}
	return n
}

// Append writes one record. It returns ErrFull when the unacknowledged bytes would pass
// MaxBytes; the caller decides what that means (see the publisher's full policy).
func (s *Spool) Append(topic string, key, value []byte) error {
	payloadLen := uvarintLen(len(topic)) + len(topic) + uvarintLen(len(key)) + len(key) + len(value)
	if payloadLen > maxRecordLen {
		return fmt.Errorf("record of %d bytes exceeds %d", payloadLen, maxRecordLen)
	}
	rec := make([]byte, headerSize, headerSize+payloadLen)
	rec = binary.AppendUvarint(rec, uint64(len(topic)))
	rec = append(rec, topic...)
	rec = binary.AppendUvarint(rec, uint64(len(key)))
	rec = append(rec, key...)
	rec = append(rec, value...)
	binary.LittleEndian.PutUint32(rec[0:4], uint32(payloadLen))
	binary.LittleEndian.PutUint32(rec[4:8], crc32.Checksum(rec[headerSize:], castagnoli))

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.pending+int64(len(rec)) > s.opts.MaxBytes {
		return ErrFull
	}
	last := &s.segs[len(s.segs)-1]
	if last.size > 0 && last.size+int64(len(rec)) > s.opts.SegmentBytes {
		if err := s.roll(); err != nil {
			return err
		}
		last = &s.segs[len(s.segs)-1]
	}
	if _, err := s.active.Write(rec); err != nil {
		// A short write leaves a torn record; truncate back so the segment stays clean.
		_ = s.active.Truncate(last.size)
		return fmt.Errorf("append to spool: %w", err)
	}
	if s.opts.Sync {
		if err := s.active.Sync(); err != nil {
			return fmt.Errorf("sync spool: %w", err)
		}
	}
	last.size += int64(len(rec))
	s.pending += int64(len(rec))
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

func (s *Spool) roll() error {
	last := s.segs[len(s.segs)-1]
	if err := s.active.Close(); err != nil {
		return fmt.Errorf("close segment %d: %w", last.base, err)
	}
	// Bases are byte-derived so they sort and never repeat: the previous base plus the
	// previous segment's size.
	base := last.base + uint64(last.size)
	s.segs = append(s.segs, segment{base: base})
	return s.openActive()
}

func uvarintLen(n int) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(n))
}

// Pending returns the number of bytes appended and not yet acknowledged.
func (s *Spool) Pending() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// MaxBytes returns the bound on the bytes appended and not yet acknowledged.
func (s *Spool) MaxBytes() int64 { return s.opts.MaxBytes }

// TruncatedBytes returns the bytes Open dropped after the last intact record of its
// segments: a torn write after a crash is a few bytes; more means lost events.
func (s *Spool) TruncatedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.truncated
}

// Notify returns a channel that receives after appends; the reader waits on it when it
// has read everything.
func (s *Spool) Notify() <-chan struct{} { return s.notify }

// Close stops appends, saves the cursor and closes the files.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.readFile != nil {
		errs = append(errs, s.readFile.Close())
	}
	errs = append(errs, s.active.Close(), s.saveCursor(s.acked), s.cursor.Close())
	return errors.Join(errs...)
}
