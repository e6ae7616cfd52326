package statesink

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/geminicodeapi/gca/schemas"
)

// Test events. Times are real-ish (near the present) because Valkey expires keys by its
// own clock: an event from 2020 would be written with an expiry in the past.

const (
	modelPro   = "gemini-2.5-pro"
	modelFlash = "gemini-2.5-flash"
)

// ok is a successful, counted attempt.
func ok(project, key string, ts time.Time, tokens int64) schemas.Attempt {
	return schemas.Attempt{Project: project, KeyHash: key, TimeMs: ts.UnixMilli(), Status: 200,
		LatencyMs: 100, InputTokens: tokens, Counted: true}
}

// failed is an uncounted attempt that failed with the given kind.
func failed(project, key string, ts time.Time, status int, kind string) schemas.Attempt {
	return schemas.Attempt{Project: project, KeyHash: key, TimeMs: ts.UnixMilli(), Status: status,
		Failure: kind, LatencyMs: 30, InputTokens: 50}
}

func request(id, model string, attempts ...schemas.Attempt) *schemas.RequestEvent {
	return &schemas.RequestEvent{
		Type: schemas.TypeRequest, V: schemas.RequestVersion, EventID: id,
		TimeMs: attempts[0].TimeMs, ClientType: schemas.ClientOpenAI, Model: model,
		Status: attempts[len(attempts)-1].Status, Attempts: attempts,
	}
}

func keyState(id, kind, project string, ts time.Time) *schemas.KeyStateEvent {
	return &schemas.KeyStateEvent{
		Type: schemas.TypeKeyState, V: schemas.KeyStateVersion, EventID: id, TimeMs: ts.UnixMilli(),
		Kind: kind, Project: project, Source: schemas.SourceUpstream,
	}
}

func cooldown(id, project, model string, ts, until time.Time) *schemas.KeyStateEvent {
	e := keyState(id, schemas.KindCooldown, project, ts)
	e.Model, e.UntilMs, e.Reason = model, until.UnixMilli(), schemas.ReasonRPM
	e.QuotaExceeded = schemas.QuotaExceeded{RPM: true}
	return e
}

func keyEvent(id, kind, project, key string, ts time.Time) *schemas.KeyStateEvent {
	e := keyState(id, kind, project, ts)
	e.KeyHash = key
	switch kind {
	case schemas.KindDisable:
		e.Reason, e.Status = schemas.ReasonKeyInvalid, 400
	case schemas.KindEnable:
		e.Reason, e.Source = schemas.ReasonRevalidated, schemas.SourceRevalidation
	}
	return e
}

// nextMinute is the start of the minute after the real present plus one, so test
// windows lie in the future and no key expires while the test runs.
func nextMinute() time.Time { return time.Now().Truncate(time.Minute).Add(2 * time.Minute) }

var failureKinds = []string{"", "", "", "upstream", "timeout", "network", "minute_quota", "day_quota", "client", "key_invalid"}

// randomEvents returns n request events over three projects, four keys each and two
// models, with 1-3 attempts of mixed outcomes around base. Timestamps fall on a coarse
// grid so that ties (a success and a failure of one key in the same millisecond) occur.
func randomEvents(rng *rand.Rand, n int, base time.Time, prefix string) []*schemas.RequestEvent {
	out := make([]*schemas.RequestEvent, n)
	for i := range out {
		model := modelPro
		if rng.IntN(2) == 0 {
			model = modelFlash
		}
		var atts []schemas.Attempt
		for j := range 1 + rng.IntN(3) {
			p := "p" + strconv.Itoa(rng.IntN(3))
			k := p + "k" + strconv.Itoa(rng.IntN(4))
			ts := base.Add(time.Duration(rng.IntN(360)) * 500 * time.Millisecond)
			kind := failureKinds[rng.IntN(len(failureKinds))]
			if j == 0 && rng.IntN(3) == 0 {
				kind = ""
			}
			a := failed(p, k, ts, 503, kind)
			if kind == "" {
				a = ok(p, k, ts, int64(rng.IntN(5000)))
				a.LatencyMs = int64(rng.IntN(2000))
			}
			atts = append(atts, a)
		}
		out[i] = request(fmt.Sprintf("%s-%06d", prefix, i), model, atts...)
	}
	return out
}
