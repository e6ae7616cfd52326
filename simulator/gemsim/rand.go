package gemsim

import (
	"encoding/base64"
	"encoding/binary"
	"sync/atomic"
)

// seq is a lock-free deterministic generator: the n-th draw is a hash of the seed and n,
// so a run with the same seed and the same order of calls repeats itself, and no lock is
// taken on the request path.
type seq struct {
	seed uint64
	n    atomic.Uint64
}

// newSeq starts a generator; stream separates generators that share one seed.
func newSeq(seed int64, stream uint64) *seq {
	return &seq{seed: splitmix64(uint64(seed) ^ stream*0x9e3779b97f4a7c15)}
}

// next returns the next 64 random bits.
func (s *seq) next() uint64 {
	return splitmix64(s.seed + s.n.Add(1)*0x9e3779b97f4a7c15)
}

// float returns a number in [0, 1).
func (s *seq) float() float64 {
	return float64(s.next()>>11) / (1 << 53)
}

// count returns 1, 2, 3, ...: the number of draws so far, for ids such as call_<n>.
func (s *seq) count() uint64 { return s.n.Add(1) }

// responseID returns a 22-character URL-safe id shaped like the real responseId.
func (s *seq) responseID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], s.next())
	binary.LittleEndian.PutUint64(b[8:], s.next())
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// splitmix64 is the SplitMix64 finaliser, a fast 64-bit mixing function.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
