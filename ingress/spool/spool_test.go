package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func readAll(t *testing.T, s *Spool, from Position) ([]Record, Position) {
	t.Helper()
	var all []Record
	pos := from
	for {
		recs, err := s.Read(pos, 100, 1<<20)
		require.NoError(t, err)
		if len(recs) == 0 {
			return all, pos
		}
		all = append(all, recs...)
		pos = recs[len(recs)-1].Next
	}
}

func values(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

func TestAppendReadInOrderAcrossSegments(t *testing.T) {
	s, err := Open(t.TempDir(), Options{SegmentBytes: 200})
	require.NoError(t, err)
	defer s.Close()
	var want []string
	for i := range 50 {
		v := fmt.Sprintf("event-%02d", i)
		want = append(want, v)
		require.NoError(t, s.Append("topic-a", []byte("k"), []byte(v)))
	}
	require.Greater(t, len(s.segs), 3, "small segments must roll")
	recs, _ := readAll(t, s, s.Start())
	require.Equal(t, want, values(recs))
	require.Equal(t, "topic-a", recs[7].Topic)
	require.Equal(t, []byte("k"), recs[7].Key)
}

func TestAckDeletesSegmentsAndFreesSpace(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{SegmentBytes: 200, MaxBytes: 10_000})
	require.NoError(t, err)
	defer s.Close()
	for i := range 50 {
		require.NoError(t, s.Append("t", nil, []byte(fmt.Sprintf("v%02d", i))))
	}
	before := s.Pending()
	recs, end := readAll(t, s, s.Start())
	require.Len(t, recs, 50)
	require.NoError(t, s.Ack(end))
	require.Zero(t, s.Pending())
	require.Greater(t, before, int64(0))
	files, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	require.Len(t, files, 1, "only the active segment remains")
}

func TestFullRejectsUntilAcked(t *testing.T) {
	s, err := Open(t.TempDir(), Options{MaxBytes: 100})
	require.NoError(t, err)
	defer s.Close()
	var n int
	for {
		err := s.Append("t", nil, []byte("0123456789"))
		if err != nil {
			require.ErrorIs(t, err, ErrFull)
			break
		}
		n++
	}
	require.Equal(t, 4, n, "each record takes 8 header + 2 + 10 bytes")
	recs, _ := s.Read(s.Start(), 2, 1<<20)
	require.NoError(t, s.Ack(recs[1].Next))
	require.NoError(t, s.Append("t", nil, []byte("0123456789")))
}

func TestReopenResumesAtCursorAfterCrash(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{SegmentBytes: 300})
	require.NoError(t, err)
	for i := range 30 {
		require.NoError(t, s.Append("t", nil, []byte(fmt.Sprintf("v%02d", i))))
	}
	recs, err := s.Read(s.Start(), 10, 1<<20)
	require.NoError(t, err)
	require.NoError(t, s.Ack(recs[9].Next))
	// No Close: the process was killed. Files and cursor are what the kernel holds.
	s2, err := Open(dir, Options{SegmentBytes: 300})
	require.NoError(t, err)
	defer s2.Close()
	got, _ := readAll(t, s2, s2.Start())
	require.Len(t, got, 20)
	require.Equal(t, "v10", string(got[0].Value))
	require.Equal(t, "v29", string(got[19].Value))
	require.NoError(t, s2.Append("t", nil, []byte("after")))
	got, _ = readAll(t, s2, s2.Start())
	require.Equal(t, "after", string(got[len(got)-1].Value))
}

func TestTornTailIsDropped(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	require.NoError(t, s.Append("t", nil, []byte("complete")))
	require.NoError(t, s.Append("t", nil, []byte("torn-record")))
	require.NoError(t, s.Close())
	path := s.segPath(0)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, st.Size()-3)) // a crash mid-write

	s2, err := Open(dir, Options{})
	require.NoError(t, err)
	defer s2.Close()
	require.Equal(t, int64(8+3+len("torn-record")-3), s2.TruncatedBytes(), "the torn record's bytes are counted")
	got, _ := readAll(t, s2, s2.Start())
	require.Equal(t, []string{"complete"}, values(got))
	require.NoError(t, s2.Append("t", nil, []byte("next")))
	got, _ = readAll(t, s2, s2.Start())
	require.Equal(t, []string{"complete", "next"}, values(got))
}

func TestCorruptRecordIsReportedNotSkipped(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Append("t", nil, []byte("aaaa")))
	require.NoError(t, s.Append("t", nil, []byte("bbbb")))
	f, err := os.OpenFile(s.segPath(0), os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("X"), 11) // inside the first payload
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, err = s.Read(s.Start(), 10, 1<<20)
	require.ErrorContains(t, err, "checksum")
}

func TestConcurrentAppendsAllArrive(t *testing.T) {
	s, err := Open(t.TempDir(), Options{SegmentBytes: 4096})
	require.NoError(t, err)
	defer s.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				require.NoError(t, s.Append("t", nil, []byte(fmt.Sprintf("%d-%d", g, i))))
			}
		}()
	}
	wg.Wait()
	got, _ := readAll(t, s, s.Start())
	seen := map[string]bool{}
	for _, r := range got {
		seen[string(r.Value)] = true
	}
	require.Len(t, seen, 1600)
}
