//go:build integration

package replay

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/processors/internal/chtest"
	"github.com/geminicodeapi/gca/processors/statesink"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

// fixture is one test's topics, Valkey prefix and ClickHouse database, with events
// produced into the topics. Event times start at the next minute but one, so no window
// ends while the test runs and the state is exactly what the events say.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	topics Topics
	vk     valkey.Client
	prefix string
	ch     driver.Conn
	db     string
	next   time.Time

	reqs   []*schemas.RequestEvent
	states []*schemas.KeyStateEvent
	audits []*schemas.AuditEvent
}

func newFixture(t *testing.T, clickhouse bool) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: testenv.Context(t)}
	f.topics = Topics{
		Requests: testenv.Topic(t, "replay_requests", 4),
		KeyState: testenv.Topic(t, "replay_keystate", 3),
		Audit:    testenv.Topic(t, "replay_audit", 1),
	}
	f.vk, f.prefix = testenv.Valkey(t)
	// The fresh prefixes of this test's replays ("<prefix minus ':'>-replay-<id>:").
	t.Cleanup(func() { testenv.DeleteKeys(f.vk, strings.TrimSuffix(f.prefix, ":")+"-replay-*") })
	if clickhouse {
		f.ch, f.db = testenv.ClickHouse(t)
		require.NoError(t, chddl.Migrate(f.ctx, f.ch, chddl.Options{Database: f.db, RetentionDays: 30, StatsRetentionDays: 730}))
		t.Cleanup(func() {
			// Fresh and replaced databases of this test's replays.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rows, err := f.ch.Query(ctx, "SELECT name FROM system.databases WHERE name LIKE '"+f.db+"\\_%'")
			if err != nil {
				return
			}
			var dbs []string
			for rows.Next() {
				var n string
				if rows.Scan(&n) == nil {
					dbs = append(dbs, n)
				}
			}
			rows.Close()
			for _, d := range dbs {
				_ = f.ch.Exec(ctx, "DROP DATABASE IF EXISTS `"+d+"`")
			}
		})
	}
	f.next = time.Now().Truncate(time.Minute).Add(2 * time.Minute)
	return f
}

// produce generates and produces events spread over span from the fixture's next time.
func (f *fixture) produce(requests, keyStates, audits int, span time.Duration) ([]*schemas.RequestEvent, []*schemas.KeyStateEvent) {
	f.t.Helper()
	g := chtest.NewGen(uint64(time.Now().UnixNano()), f.next)
	reqs, states, auds := g.Requests(requests, span), g.KeyStates(keyStates, span), g.Audits(audits, span)
	var msgs []kafka.Message
	for _, e := range reqs {
		msgs = append(msgs, chtest.Record(f.t, f.topics.Requests, e, false))
	}
	for _, e := range states {
		msgs = append(msgs, chtest.Record(f.t, f.topics.KeyState, e, false))
	}
	for _, e := range auds {
		msgs = append(msgs, chtest.Record(f.t, f.topics.Audit, e, false))
	}
	chtest.Produce(f.t, testenv.KafkaBrokers(), msgs)
	f.reqs = append(f.reqs, reqs...)
	f.states = append(f.states, states...)
	f.audits = append(f.audits, auds...)
	f.next = f.next.Add(span)
	return reqs, states
}

func (f *fixture) options(target Target, into Into, id string) Options {
	return Options{
		Brokers: testenv.KafkaBrokers(), Topics: f.topics, FromBeginning: true,
		Target: target, Into: into, ID: id,
		Valkey: f.vk, LivePrefix: f.prefix,
		ClickHouse: f.ch, Schema: chddl.Options{Database: f.db, RetentionDays: 30, StatsRetentionDays: 730},
		ClickHouseGroup: f.db + "-ch",
		Logger:          testLogger(),
		Progress:        func(p Progress) { f.t.Log(p.String()) },
	}
}

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func (f *fixture) snapshot(prefix string) map[string]statesink.Value {
	f.t.Helper()
	s, err := statesink.NewReader(f.vk, schemas.Keys{Prefix: prefix}).Snapshot(f.ctx)
	require.NoError(f.t, err)
	return s
}

// expected is the state of every produced event, marks included, at clock.
func (f *fixture) expected(clock time.Time) map[string]statesink.Value {
	return statesink.Expected(f.reqs, f.states, clock)
}

// applyLive writes events into the live prefix as the live consumer would.
func (f *fixture) applyLive(reqs []*schemas.RequestEvent, states []*schemas.KeyStateEvent, clock time.Time) {
	f.t.Helper()
	w := statesink.New(f.vk, schemas.Keys{Prefix: f.prefix}, statesink.Options{Now: func() time.Time { return clock }})
	require.NoError(f.t, w.ApplyRequests(f.ctx, reqs))
	require.NoError(f.t, w.ApplyKeyStates(f.ctx, states))
}

// writeLiveTables writes events into the live database as the live consumer would.
func (f *fixture) writeLiveTables(reqs []*schemas.RequestEvent, states []*schemas.KeyStateEvent, audits []*schemas.AuditEvent) {
	f.t.Helper()
	sink, err := tableSink(f.ctx, f.ch, chddl.Options{Database: f.db, RetentionDays: 30, StatsRetentionDays: 730})
	require.NoError(f.t, err)
	require.NoError(f.t, sink.Write(f.ctx, &consume.Batch{Requests: reqs, KeyStates: states, Audits: audits}))
}

// commitGroup commits the high watermarks of every topic for group, as a live consumer
// that has written everything would.
func (f *fixture) commitGroup(group string) {
	f.t.Helper()
	b := newBroker(testenv.KafkaBrokers())
	parts, err := b.partitions(f.ctx, f.topics.Requests, f.topics.KeyState, f.topics.Audit)
	require.NoError(f.t, err)
	hw, err := b.highWatermarks(f.ctx, parts)
	require.NoError(f.t, err)
	commits := map[string][]kafka.OffsetCommit{}
	for t, ps := range hw {
		for p, off := range ps {
			commits[t] = append(commits[t], kafka.OffsetCommit{Partition: p, Offset: off})
		}
	}
	require.Eventually(f.t, func() bool {
		resp, err := b.c.OffsetCommit(f.ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: commits})
		if err != nil {
			return false
		}
		for _, ps := range resp.Topics {
			for _, p := range ps {
				if p.Error != nil {
					return false
				}
			}
		}
		return true
	}, 30*time.Second, 200*time.Millisecond)
}
