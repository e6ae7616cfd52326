package keypool

import (
	"sync"
	"time"

	"github.com/geminicodeapi/gca/schemas"
)

// The view is this instance's cached picture of Valkey's state, refreshed from the
// replies of its own reservation scripts and by the background refresh, and amended at
// once by the outcomes of its own attempts (a 429 cools a pair down here before the
// processors have written the cool-down). Selection ranks projects from it and skips
// those it knows to be unusable without a round trip; the reservation script remains
// the authority.

type pairKey struct{ project, model string }

// pairState is the view of one (project, model) pair.
type pairState struct {
	mu sync.Mutex

	// From Valkey: the numbers of the last script reply for the pair.
	seen           time.Time
	minute         int64
	rpm, tpm       int64 // counted in minute
	pendReq        int64 // pending reservations of minute
	pendTok        int64
	day            string
	rpd            int64 // counted in day
	pendDay        int64 // pending reservations of day
	cooldownUntil  time.Time
	cooldownReason string
	// replySeq is the number of the script call whose reply the numbers above are.
	replySeq uint64

	// Local: learnt from this instance's own outcomes, until Valkey confirms it (apply).
	localCooldownUntil  time.Time
	localCooldownReason string

	// inflight counts this instance's reservation calls awaiting their reply; a local
	// admission counts them as admitted.
	inflight    int64
	inflightTok int64

	// waiting holds this instance's reservations for the pair that wait for the next
	// script call; running is set while a goroutine makes those calls (batch.go).
	waiting []*waiter
	running bool

	// Admissions this instance made without Valkey during the current outage (epoch),
	// and reservations whose call failed (they may have been applied).
	offEpoch  uint64
	offMinute int64
	offReq    int64
	offTok    int64
	offDay    string
	offDayReq int64

	// lastUsed and keys serve the refresh of pairs that are not in the config (the
	// pass-through clients' own keys).
	lastUsed time.Time
	keys     []string
}

// usage is what the view knows to be used in minute and day: Valkey's last numbers
// (counted plus pending) and this instance's admissions without Valkey.
func (s *pairState) usage(minute int64, day string, epoch uint64) (req, tok, dayReq int64) {
	if s.minute == minute {
		req, tok = s.rpm+s.pendReq, s.tpm+s.pendTok
	}
	if s.day == day {
		dayReq = s.rpd + s.pendDay
	}
	if s.offEpoch == epoch {
		if s.offMinute == minute {
			req += s.offReq
			tok += s.offTok
		}
		if s.offDay == day {
			dayReq += s.offDayReq
		}
	}
	return req, tok, dayReq
}

// addOff counts an admission made without Valkey (or possibly made: a failed call).
func (s *pairState) addOff(epoch uint64, minute int64, day string, tokens int64) {
	if s.offEpoch != epoch {
		s.offEpoch, s.offMinute, s.offReq, s.offTok, s.offDay, s.offDayReq = epoch, 0, 0, 0, "", 0
	}
	if s.offMinute != minute {
		s.offMinute, s.offReq, s.offTok = minute, 0, 0
	}
	if s.offDay != day {
		s.offDay, s.offDayReq = day, 0
	}
	s.offReq++
	s.offTok += tokens
	s.offDayReq++
}

// cooling returns the end and reason of the pair's cool-down, if it is cooling at now.
func (s *pairState) cooling(now time.Time) (time.Time, string, bool) {
	until, reason := s.cooldownUntil, s.cooldownReason
	if s.localCooldownUntil.After(until) {
		until, reason = s.localCooldownUntil, s.localCooldownReason
	}
	if until.After(now) {
		return until, reason, true
	}
	return time.Time{}, "", false
}

// apply stores the reply of the script call numbered seq, unless the view already holds
// the reply of a call issued later. Concurrent calls on one connection run in the order
// they were sent, but their replies reach the view in whatever order their goroutines
// get a CPU; under a burst an older snapshot (fewer reservations) would otherwise
// overwrite a newer one, and a degraded pool admitting from the view would admit on
// headroom that is gone.
func (s *pairState) apply(now time.Time, r *scriptReply, minute int64, day string, seq uint64) {
	if seq < s.replySeq {
		return
	}
	s.replySeq = seq
	s.seen = now
	s.minute, s.rpm, s.tpm, s.pendReq, s.pendTok = minute, r.rpm, r.tpm, r.pendReq, r.pendTok
	s.day, s.rpd, s.pendDay = day, r.rpd, r.pendDay
	s.cooldownUntil, s.cooldownReason = r.cooldownUntil, r.cooldownReason
	if !s.localCooldownUntil.IsZero() && !r.cooldownUntil.Before(s.localCooldownUntil) {
		// Valkey has the cool-down now (the processors wrote the key-state event); the
		// local one has done its job of bridging the event's way there. From here on
		// Valkey's word counts, so that an operator's clear, which deletes the entry,
		// lifts the cool-down on every replica and not only at its end.
		s.localCooldownUntil, s.localCooldownReason = time.Time{}, ""
	}
}

// keyState is the view of one key.
type keyState struct {
	mu sync.Mutex

	// From Valkey.
	remoteDisabled  *schemas.BlacklistEntry
	remoteOpenUntil time.Time

	// Local.
	localDisabled   string
	localDisabledAt time.Time
	fails           []time.Time // failures since the last success, oldest first
	ewmaMs          float64
	ewmaN           int64
}

// localDisabledTTL is how long a key disabled by this instance's own outcome stays
// disabled here without Valkey's confirmation: long enough for the key-state event to
// reach the processors and Valkey, short enough that an operator's enable takes effect.
const localDisabledTTL = 30 * time.Second

// ewmaAlpha weighs a new latency sample.
const ewmaAlpha = 0.2

// disabled returns why the key may not be used, or "".
func (s *keyState) disabled(now time.Time, degraded bool) string {
	if s.remoteDisabled != nil {
		if s.remoteDisabled.Reason != "" {
			return s.remoteDisabled.Reason
		}
		return "disabled"
	}
	if s.localDisabled != "" && (degraded || now.Sub(s.localDisabledAt) < localDisabledTTL) {
		return s.localDisabled
	}
	return ""
}

// openUntil returns when the key's circuit closes, if it is open at now: Valkey's
// view, or this instance's own count of failures (maxFails within window).
func (s *keyState) openUntil(now time.Time, maxFails int, window time.Duration) (time.Time, bool) {
	until := time.Time{}
	if s.remoteOpenUntil.After(now) {
		until = s.remoteOpenUntil
	}
	if maxFails > 0 && len(s.fails) >= maxFails {
		// The circuit closes when the failure that keeps the count at maxFails leaves
		// the window (the same rule the reservation script applies to Valkey's ZSET).
		n := 0
		for _, f := range s.fails {
			if now.Sub(f) < window {
				n++
			}
		}
		if n >= maxFails {
			recent := s.fails[len(s.fails)-n:]
			if u := recent[n-maxFails].Add(window); u.After(until) {
				until = u
			}
		}
	}
	return until, !until.IsZero()
}

// view holds every pairState and keyState.
type view struct {
	mu    sync.RWMutex
	pairs map[pairKey]*pairState
	keys  map[string]*keyState
}

func newView() *view {
	return &view{pairs: map[pairKey]*pairState{}, keys: map[string]*keyState{}}
}

func (v *view) pair(project, model string) *pairState {
	k := pairKey{project, model}
	v.mu.RLock()
	s := v.pairs[k]
	v.mu.RUnlock()
	if s != nil {
		return s
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if s = v.pairs[k]; s == nil {
		s = &pairState{}
		v.pairs[k] = s
	}
	return s
}

func (v *view) key(hash string) *keyState {
	v.mu.RLock()
	s := v.keys[hash]
	v.mu.RUnlock()
	if s != nil {
		return s
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if s = v.keys[hash]; s == nil {
		s = &keyState{}
		v.keys[hash] = s
	}
	return s
}

// pairsSnapshot lists the pairs with their states.
func (v *view) pairsSnapshot() map[pairKey]*pairState {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make(map[pairKey]*pairState, len(v.pairs))
	for k, s := range v.pairs {
		out[k] = s
	}
	return out
}

// forget drops the pairs unused since before cutoff that keepPair does not keep, and
// the keys that neither keepKey nor a remaining pair names, so the pass-through
// clients' keys do not accumulate.
func (v *view) forget(cutoff time.Time, keepPair func(pairKey) bool, keepKey func(string) bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	used := map[string]bool{}
	for k, s := range v.pairs {
		s.mu.Lock()
		old := s.lastUsed.Before(cutoff)
		if !old {
			for _, h := range s.keys {
				used[h] = true
			}
		}
		s.mu.Unlock()
		if old && !keepPair(k) {
			delete(v.pairs, k)
		}
	}
	for h := range v.keys {
		if !used[h] && !keepKey(h) {
			delete(v.keys, h)
		}
	}
}
