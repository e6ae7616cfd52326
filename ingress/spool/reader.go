package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Start returns the position of the first unacknowledged record: where a reader begins
// after Open.
func (s *Spool) Start() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// Read returns up to max records starting at from, never beyond the last complete
// append, and never more than maxBytes of values unless the first record alone is
// larger. It returns no records and no error when from is at the end. Only one
// goroutine may call Read.
func (s *Spool) Read(from Position, max int, maxBytes int) ([]Record, error) {
	var out []Record
	pos := from
	size := 0
	for len(out) < max {
		s.mu.Lock()
		segSize, next, ok := s.segmentInfo(pos.Segment)
		s.mu.Unlock()
		if !ok {
			return out, fmt.Errorf("spool segment %d not found", pos.Segment)
		}
		if pos.Offset >= segSize {
			if next == 0 {
				return out, nil // at the end
			}
			pos = Position{Segment: next}
			continue
		}
		f, err := s.reader(pos.Segment)
		if err != nil {
			return out, err
		}
		var hdr [headerSize]byte
		if _, err := f.ReadAt(hdr[:], pos.Offset); err != nil {
			return out, fmt.Errorf("read spool record header at %d/%d: %w", pos.Segment, pos.Offset, err)
		}
		n := int64(binary.LittleEndian.Uint32(hdr[0:4]))
		if pos.Offset+headerSize+n > segSize {
			return out, fmt.Errorf("spool record at %d/%d overruns its segment", pos.Segment, pos.Offset)
		}
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, pos.Offset+headerSize); err != nil {
			return out, fmt.Errorf("read spool record at %d/%d: %w", pos.Segment, pos.Offset, err)
		}
		if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(hdr[4:8]) {
			return out, fmt.Errorf("spool record at %d/%d fails its checksum", pos.Segment, pos.Offset)
		}
		rec, err := decodePayload(buf)
		if err != nil {
			return out, fmt.Errorf("spool record at %d/%d: %w", pos.Segment, pos.Offset, err)
		}
		pos.Offset += headerSize + n
		rec.Next = pos
		if len(out) > 0 && size+len(rec.Value) > maxBytes {
			return out, nil
		}
		size += len(rec.Value)
		out = append(out, rec)
	}
	return out, nil
}

// segmentInfo returns the complete size of segment base and the base of the segment
// after it (0 when it is the last). Callers hold s.mu.
func (s *Spool) segmentInfo(base uint64) (size int64, next uint64, ok bool) {
	for i, sg := range s.segs {
		if sg.base == base {
			if i+1 < len(s.segs) {
				next = s.segs[i+1].base
			}
			return sg.size, next, true
		}
	}
	return 0, 0, false
}

func (s *Spool) reader(base uint64) (*os.File, error) {
	if s.readFile != nil && s.readSeg == base {
		return s.readFile, nil
	}
	if s.readFile != nil {
		_ = s.readFile.Close()
		s.readFile = nil
	}
	f, err := os.Open(s.segPath(base))
	if err != nil {
		return nil, fmt.Errorf("open spool segment %d for reading: %w", base, err)
	}
	s.readFile, s.readSeg = f, base
	return f, nil
}

func decodePayload(b []byte) (Record, error) {
	tl, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < tl {
		return Record{}, errors.New("bad topic length")
	}
	b = b[n:]
	topic := string(b[:tl])
	b = b[tl:]
	kl, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < kl {
		return Record{}, errors.New("bad key length")
	}
	b = b[n:]
	return Record{Topic: topic, Key: b[:kl:kl], Value: b[kl:]}, nil
}

// Ack records that every record before p has been delivered: their bytes no longer
// count against MaxBytes, the segments wholly before p are deleted, and the cursor is
// saved so a restart resumes at p.
func (s *Spool) Ack(p Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acked = p
	s.pending = s.bytesAfter(p)
	var errs []error
	for len(s.segs) > 1 && s.segs[0].base < p.Segment {
		if s.readFile != nil && s.readSeg == s.segs[0].base {
			errs = append(errs, s.readFile.Close())
			s.readFile = nil
		}
		if err := os.Remove(s.segPath(s.segs[0].base)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove delivered segment: %w", err))
		}
		s.segs = s.segs[1:]
	}
	errs = append(errs, s.saveCursor(p))
	return errors.Join(errs...)
}

// saveCursor overwrites the cursor file in place with one write of a fixed width, so
// an Ack costs one system call (a temporary file and a rename cost four, and the
// shipper acknowledges every batch). A write that reached the page cache survives a
// crash of the process whole: it cannot be torn by SIGKILL.
func (s *Spool) saveCursor(p Position) error {
	var buf [42]byte
	b := strconv.AppendUint(buf[:0], p.Segment, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, p.Offset, 10)
	for len(b) < len(buf)-1 {
		b = append(b, ' ')
	}
	b = append(b, '\n')
	if _, err := s.cursor.WriteAt(b, 0); err != nil {
		return fmt.Errorf("save spool cursor: %w", err)
	}
	return nil
}

func (s *Spool) loadCursor() (Position, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, cursorFile))
	if errors.Is(err, os.ErrNotExist) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("read spool cursor: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return Position{}, fmt.Errorf("spool cursor %q malformed", b)
	}
	seg, err1 := strconv.ParseUint(f[0], 10, 64)
	off, err2 := strconv.ParseInt(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Position{}, fmt.Errorf("spool cursor %q malformed: %w", b, err)
	}
	return Position{Segment: seg, Offset: off}, nil
}
