//go:build integration

package keypool_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/ingress/keypool"
	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/schemas"
)

// clock is an injected clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// newClock starts 5 s into the next minute, so a test has 55 s of one minute, and
// expiry times the test writes from it are in Valkey's future.
func newClock() *clock {
	return &clock{t: time.Now().Truncate(time.Minute).Add(time.Minute + 5*time.Second)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const model = "gemini-2.5-flash"

// testKey returns a fake Gemini key that is unique per test.
func testKey(t testing.TB, i int) string {
	return fmt.Sprintf("AIzaSyTest%s_%03d", testenv.UniqueName(t, "k"), i)
}

// projectsConfig builds a config of projects, each with its keys and its RPM, TPM and
// RPD for the test model.
type projectSpec struct {
	id            string
	keys          int
	rpm, tpm, rpd int64
	weights       []int
}

func projectsConfig(t testing.TB, specs ...projectSpec) *keypool.Config {
	cfg := &keypool.Config{}
	n := 0
	for _, s := range specs {
		cfg.Projects = append(cfg.Projects, keypool.ProjectConfig{
			ID:     s.id,
			Limits: map[string]keypool.Limits{model: {RPM: s.rpm, TPM: s.tpm, RPD: s.rpd}},
		})
		for i := 0; i < s.keys; i++ {
			k := keypool.KeyConfig{Key: keypool.NewSecret(testKey(t, n)), Project: s.id}
			if i < len(s.weights) {
				k.Weight = s.weights[i]
			}
			cfg.Keys = append(cfg.Keys, k)
			n++
		}
	}
	require.NoError(t, cfg.Validate())
	return cfg
}

type env struct {
	keysOf map[string][]string
	client valkey.Client
	prefix string
	keys   schemas.Keys
	clock  *clock
}

func newEnv(t testing.TB) *env {
	c, prefix := testenv.Valkey(t)
	return &env{client: c, prefix: prefix, keys: schemas.Keys{Prefix: prefix}, clock: newClock()}
}

func (e *env) pool(t testing.TB, cfg *keypool.Config, mod ...func(*keypool.Options)) *keypool.Pool {
	return e.poolOn(t, e.client, cfg, mod...)
}

func (e *env) poolOn(t testing.TB, c valkey.Client, cfg *keypool.Config, mod ...func(*keypool.Options)) *keypool.Pool {
	opts := keypool.Options{
		// Valkey is up in these tests: a generous timeout keeps a loaded test machine
		// from being taken for an outage. The fail-open tests take Valkey away for real.
		Timeout: 5 * time.Second,
		Prefix:  e.prefix,
		Now:     e.clock.Now,
		Rand:    rand.New(rand.NewPCG(1, 2)),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, m := range mod {
		m(&opts)
	}
	p, err := keypool.New(c, cfg, opts)
	require.NoError(t, err)
	return p
}

// count simulates the processor that counts an attempt: it increments the pair's
// counters for the attempt's minute and day and deletes its reservation, in one
// script, as the processors do.
func (e *env) count(t testing.TB, l *keypool.Lease, tokens int64) {
	t.Helper()
	p, m := l.Key.Project(), l.Model
	at := l.At
	res := countScript.Exec(context.Background(), e.client,
		[]string{e.keys.Pending(p, m), e.keys.MinuteRequests(p, m, schemas.MinuteOf(at)),
			e.keys.MinuteTokens(p, m, schemas.MinuteOf(at)), e.keys.DayRequests(p, m, schemas.PacificDay(at))},
		[]string{l.Reservation, strconv.FormatInt(tokens, 10)})
	require.NoError(t, res.Error())
}

// countScript is what the processors' counting script does for one attempt: the
// counters up, the reservation settled (schemas.SettleReservationLua), atomically.
var countScript = valkey.NewLuaScript(schemas.SettleReservationLua + `
redis.call('INCR', KEYS[2])
redis.call('INCRBY', KEYS[3], ARGV[2])
redis.call('INCR', KEYS[4])
return settle(KEYS[1], ARGV[1])
`)

// reserveElsewhere records n reservations of one token each, in the current minute,
// as another replica's reservation script would.
func (e *env) reserveElsewhere(t testing.TB, project string, n int) {
	t.Helper()
	now := e.clock.Now()
	minute, day := schemas.MinuteOf(now), schemas.PacificDay(now)
	ctx := context.Background()
	for i := 0; i < n; i++ {
		v := strconv.FormatInt(minute, 10) + ":1:" + strconv.FormatInt(schemas.MinuteCounterExpiry(now).UnixMilli(), 10) + ":" + day
		require.NoError(t, e.client.Do(ctx, e.client.B().Hset().Key(e.keys.Pending(project, model)).FieldValue().FieldValue("other-"+strconv.Itoa(i), v).Build()).Error())
	}
	require.NoError(t, e.client.Do(ctx, e.client.B().Hincrby().Key(e.keys.PendingMinute(project, model, minute)).Field("r").Increment(int64(n)).Build()).Error())
	require.NoError(t, e.client.Do(ctx, e.client.B().Hincrby().Key(e.keys.PendingMinute(project, model, minute)).Field("t").Increment(int64(n)).Build()).Error())
	require.NoError(t, e.client.Do(ctx, e.client.B().Incrby().Key(e.keys.PendingDay(project, model, day)).Increment(int64(n)).Build()).Error())
	// The expiries every writer of reservations sets (keypool's add_pending).
	for key, at := range map[string]time.Time{
		e.keys.Pending(project, model):               schemas.DayCounterExpiry(now),
		e.keys.PendingMinute(project, model, minute): schemas.MinuteCounterExpiry(now),
		e.keys.PendingDay(project, model, day):       schemas.DayCounterExpiry(now),
	} {
		require.NoError(t, e.client.Do(ctx, e.client.B().Pexpireat().Key(key).MillisecondsTimestamp(at.UnixMilli()).Build()).Error())
	}
}

func (e *env) set(t testing.TB, key string, value string, expireAt time.Time) {
	t.Helper()
	cmd := e.client.B().Set().Key(key).Value(value)
	var err error
	if expireAt.IsZero() {
		err = e.client.Do(context.Background(), cmd.Build()).Error()
	} else {
		err = e.client.Do(context.Background(), cmd.Pxat(expireAt).Build()).Error()
	}
	require.NoError(t, err)
}

func (e *env) pending(t testing.TB, project string) map[string]string {
	t.Helper()
	m, err := e.client.Do(context.Background(), e.client.B().Hgetall().Key(e.keys.Pending(project, model)).Build()).AsStrMap()
	require.NoError(t, err)
	return m
}

func (e *env) getInt(t testing.TB, key string) int64 {
	t.Helper()
	n, err := e.client.Do(context.Background(), e.client.B().Get().Key(key).Build()).AsInt64()
	if valkey.IsValkeyNil(err) {
		return 0
	}
	require.NoError(t, err)
	return n
}

// proxy forwards TCP to Valkey and can be cut and restored, to take Valkey away from
// a pool and give it back.
type proxy struct {
	t      testing.TB
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newProxy(t testing.TB) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{t: t, addr: ln.Addr().String(), target: testenv.ValkeyAddr(), ln: ln}
	go p.accept(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
		go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
	}
}

// cut closes the listener and every connection: the client sees Valkey vanish.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// restore listens again on the same address.
func (p *proxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(p.t, err)
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.accept(ln)
}

func (p *proxy) client(t testing.TB) valkey.Client {
	c, err := valkey.NewClient(valkey.ClientOption{
		InitAddress:       []string{p.addr},
		DisableCache:      true,
		ForceSingleClient: true,
		Dialer:            net.Dialer{Timeout: 50 * time.Millisecond},
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func itoa(n int) string { return strconv.Itoa(n) }
