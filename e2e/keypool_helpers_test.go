//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/ingress/gateway"
	"github.com/geminicodeapi/gca/ingress/keypool"
	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// The key-pool tests (keypool_test.go) judge the gateway by what the simulator saw
// (its per-project quota counters and per-key response codes) and by what Valkey and
// ClickHouse hold, never by which internal calls were made. This file holds what they
// share: an Env with the pool's limits on both sides, requests, and readers of the
// admin API, Valkey and ClickHouse.

// flash is the model the key-pool tests send, unless a test needs a second one.
const flash = "gemini-2.5-flash"

// poolEnv is an Env with the readers the key-pool tests use.
type poolEnv struct {
	*e2e.Env
	t    *testing.T
	keys schemas.Keys
	// projects are the simulator's and the keys file's projects.
	projects []gemsim.ProjectConfig
}

// poolProjects returns n tier-1 projects kp1..kpn with two keys each.
func poolProjects(n int) []gemsim.ProjectConfig {
	var ps []gemsim.ProjectConfig
	for p := 1; p <= n; p++ {
		pc := gemsim.ProjectConfig{ID: fmt.Sprintf("kp%d", p), Tier: gemsim.TierOne}
		for k := 1; k <= 2; k++ {
			pc.Keys = append(pc.Keys, fmt.Sprintf("AIzaSyKeyPool-p%d-k%d-%s", p, k, strings.Repeat("x", 12)))
		}
		ps = append(ps, pc)
	}
	return ps
}

// poolOptions are the options of an Env with n tier-1 projects whose limits for the
// given models are the same in the simulator and in the gateway's keys file, so the
// gateway's idea of the quotas is the upstream's.
func poolOptions(n int, limits map[string]e2e.Limits) e2e.Options {
	sim := map[string]gemsim.Limits{}
	for m, l := range limits {
		sim[m] = gemsim.Limits{RPM: l.RPM, TPM: l.TPM, RPD: l.RPD}
	}
	return e2e.Options{
		Projects: poolProjects(n),
		Sim:      func(c *gemsim.Config) { c.Limits = sim },
		Limits:   map[string]map[string]e2e.Limits{gemsim.TierOne: limits},
	}
}

func startPool(t *testing.T, opts e2e.Options) *poolEnv {
	t.Helper()
	if opts.Projects == nil {
		opts.Projects = poolProjects(3)
	}
	if _, err := e2e.Build(); err != nil {
		t.Fatalf("build: %v", err)
	}
	start := time.Now()
	env := e2e.Start(t, opts)
	t.Logf("env started in %s", time.Since(start).Round(time.Millisecond))
	pe := &poolEnv{Env: env, t: t, keys: schemas.Keys{Prefix: env.Prefix}, projects: opts.Projects}
	t.Cleanup(func() {
		t.Logf("test body took %s", time.Since(start).Round(time.Millisecond))
		if t.Failed() {
			pe.logPoolMetrics()
		}
	})
	return pe
}

// reserveErrors returns how many reservation calls of ingress i failed or timed out:
// each turned the pool degraded (see keypool's fail-open), where it admits from its
// local view and refuses conservatively.
func (p *poolEnv) reserveErrors(i int) float64 {
	p.t.Helper()
	resp, err := http.Get(p.URL(i) + "/metrics")
	require.NoError(p.t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	const name = `gca_ingress_keypool_valkey_errors_total{op="reserve"} `
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name); ok {
			n, err := strconv.ParseFloat(v, 64)
			require.NoError(p.t, err)
			return n
		}
	}
	return 0
}

// requireFullUse requires that the gateway admitted exactly the pool's limit — unless
// an ingress took the loaded test machine's slowness for a Valkey outage, in which
// case it may have admitted less (never more): that is logged instead.
func (p *poolEnv) requireFullUse(limit, admitted int) {
	p.t.Helper()
	var errs float64
	for i := range p.Ingress {
		errs += p.reserveErrors(i)
	}
	if errs > 0 && admitted < limit {
		p.t.Logf("%v reservation calls timed out (machine overloaded): the pool went fail-open and admitted %d of %d", errs, admitted, limit)
		return
	}
	require.Equal(p.t, limit, admitted, "the whole pool's quota is used")
}

// logPoolMetrics logs the key pool's metrics of every ingress, which say why
// selections were refused (by the view, by Valkey, locally while degraded).
func (p *poolEnv) logPoolMetrics() {
	for i := range p.Ingress {
		resp, err := http.Get(p.URL(i) + "/metrics")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "gca_ingress_keypool_") && !strings.Contains(l, "_bucket") {
				p.t.Logf("ingress-%d %s", i, l)
			}
		}
	}
}

// warmModel is what warm sends: a model no test counts.
const warmModel = "gemini-2.5-pro"

// warm sends one call of warmModel with cred and waits until the processors have
// written its row: they set up the ClickHouse schema before they consume, which takes
// seconds on 18.16, and tests that race a clock minute must not spend it waiting for
// that.
func (p *poolEnv) warm(cred string) {
	p.t.Helper()
	start := time.Now()
	r := p.generateAs(0, warmModel, cred)
	require.Equal(p.t, http.StatusOK, r.status, "%s", r)
	p.attempts(r.requestID())
	p.t.Logf("processors consuming after %s", time.Since(start).Round(time.Millisecond))
}

// project returns the i-th project (0-based).
func (p *poolEnv) project(i int) gemsim.ProjectConfig { return p.projects[i] }

// reply is a client's view of one answer.
type reply struct {
	status int
	header http.Header
	body   []byte
	// at is when the answer arrived.
	at time.Time
}

func (r reply) requestID() string { return r.header.Get("X-Request-Id") }

// retryAfter is the Retry-After header in seconds; -1 when absent or not a number.
func (r reply) retryAfter() int {
	n, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil {
		return -1
	}
	return n
}

func (r reply) String() string {
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

// poolClient has enough connections for the bursts.
var poolClient = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512},
}

// send makes one HTTP call. It never fails the test, so that concurrent senders may
// use it: a call that gets no answer comes back with status 0 and the error as body,
// which the caller's status check reports.
func send(method, url, body string, header ...string) reply {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return reply{body: []byte(err.Error()), header: http.Header{}, at: time.Now()}
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := poolClient.Do(req)
	if err != nil {
		return reply{body: []byte(err.Error()), header: http.Header{}, at: time.Now()}
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{body: []byte(err.Error()), header: resp.Header, at: time.Now()}
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b, at: time.Now()}
}

// generateAs sends a native generateContent call for model to ingress i with the
// credential cred (a gateway token, or Gemini keys in pass-through mode).
func (p *poolEnv) generateAs(i int, model, cred string) reply {
	return send(http.MethodPost, p.URL(i)+"/v1beta/models/"+model+":generateContent",
		`{"contents":[{"role":"user","parts":[{"text":"Which key answers me?"}]}]}`,
		"Content-Type", "application/json", "x-goog-api-key", cred)
}

// generate sends a native generateContent call with the Env's gateway token.
func (p *poolEnv) generate(i int, model string) reply {
	return p.generateAs(i, model, p.Token)
}

// generateOK sends n calls and requires each to succeed.
func (p *poolEnv) generateOK(n int, model string) []reply {
	p.t.Helper()
	out := make([]reply, 0, n)
	for range n {
		r := p.generate(0, model)
		require.Equal(p.t, http.StatusOK, r.status, "%s", r)
		out = append(out, r)
	}
	return out
}

// chat sends an OpenAI chat completion to ingress i.
func (p *poolEnv) chat(i int, model string) reply {
	return send(http.MethodPost, p.URL(i)+"/v1/chat/completions",
		`{"model":"`+model+`","messages":[{"role":"user","content":"Which key answers me?"}]}`,
		"Content-Type", "application/json", "Authorization", "Bearer "+p.Token)
}

// adminCall calls the admin API of ingress 0.
func (p *poolEnv) adminCall(method, path, body string) reply {
	return send(method, p.URL(0)+"/admin"+path, body, "Authorization", "Bearer "+p.AdminToken)
}

// admin calls the admin API of ingress 0 and decodes a 2xx answer into out (when not
// nil); it returns the status.
func (p *poolEnv) admin(method, path string, out any) int {
	p.t.Helper()
	r := p.adminCall(method, path, "")
	if out != nil && r.status/100 == 2 {
		require.NoError(p.t, json.Unmarshal(r.body, out), "%s", r)
	}
	return r.status
}

// adminKeys is GET /admin/keys, by key hash.
func (p *poolEnv) adminKeys() map[string]keypool.KeyState {
	p.t.Helper()
	var body struct {
		Keys           []keypool.KeyState `json:"keys"`
		LiveStateError string             `json:"live_state_error"`
	}
	require.Equal(p.t, http.StatusOK, p.admin(http.MethodGet, "/keys", &body))
	require.Empty(p.t, body.LiveStateError)
	out := map[string]keypool.KeyState{}
	for _, k := range body.Keys {
		out[k.Hash] = k
	}
	return out
}

// quota returns the admin API's quota of a key for a model.
func quota(t *testing.T, k keypool.KeyState, model string) keypool.ModelQuota {
	t.Helper()
	for _, q := range k.Quotas {
		if q.Model == model {
			return q
		}
	}
	require.Failf(t, "no quota", "the admin API lists no %s quota for key %s", model, k.Hash)
	return keypool.ModelQuota{}
}

// blacklistStats is GET /admin/blacklist/stats.
func (p *poolEnv) blacklistStats() gateway.BlacklistStats {
	p.t.Helper()
	var st gateway.BlacklistStats
	require.Equal(p.t, http.StatusOK, p.admin(http.MethodGet, "/blacklist/stats", &st))
	return st
}

// cooldown reads the cool-down entry of (project, model) and its absolute expiry
// (PEXPIRETIME, Unix ms); nil and 0 when there is none.
func (p *poolEnv) cooldown(project, model string) (*schemas.BlacklistEntry, int64) {
	p.t.Helper()
	return p.entry(p.keys.Cooldown(project, model))
}

// blacklist reads the blacklist entry of a disabled key; nil when the key is enabled.
func (p *poolEnv) blacklist(project, keyHash string) *schemas.BlacklistEntry {
	p.t.Helper()
	e, exp := p.entry(p.keys.Blacklist(project, keyHash))
	if e != nil {
		require.Equal(p.t, int64(-1), exp, "a disabled key's entry has no expiry: it waits for revalidation")
	}
	return e
}

func (p *poolEnv) entry(key string) (*schemas.BlacklistEntry, int64) {
	p.t.Helper()
	ctx := context.Background()
	s, err := p.VK.Do(ctx, p.VK.B().Get().Key(key).Build()).ToString()
	if valkey.IsValkeyNil(err) {
		return nil, 0
	}
	require.NoError(p.t, err)
	var e schemas.BlacklistEntry
	require.NoError(p.t, json.Unmarshal([]byte(s), &e), "entry %s", s)
	exp, err := p.VK.Do(ctx, p.VK.B().Pexpiretime().Key(key).Build()).AsInt64()
	require.NoError(p.t, err)
	if exp == -2 {
		// Gone between the two reads.
		return nil, 0
	}
	return &e, exp
}

// waitCooldown waits for the processors to write the cool-down of (project, model).
func (p *poolEnv) waitCooldown(project, model string) (*schemas.BlacklistEntry, int64) {
	p.t.Helper()
	var e *schemas.BlacklistEntry
	var exp int64
	waitUntil(p.t, 30*time.Second, func() bool {
		e, exp = p.cooldown(project, model)
		return e != nil
	}, "cool-down of %s/%s in Valkey", project, model)
	return e, exp
}

// scan lists the Env's Valkey keys matching a pattern under its prefix.
func (p *poolEnv) scan(pattern string) []string {
	p.t.Helper()
	ctx := context.Background()
	var out []string
	var cursor uint64
	for {
		e, err := p.VK.Do(ctx, p.VK.B().Scan().Cursor(cursor).Match(p.Prefix+pattern).Count(1000).Build()).AsScanEntry()
		require.NoError(p.t, err)
		out = append(out, e.Elements...)
		if e.Cursor == 0 {
			return out
		}
		cursor = e.Cursor
	}
}

// counter reads a Valkey counter, 0 when absent.
func (p *poolEnv) counter(key string) int64 {
	p.t.Helper()
	n, err := p.VK.Do(context.Background(), p.VK.B().Get().Key(key).Build()).AsInt64()
	if valkey.IsValkeyNil(err) {
		return 0
	}
	require.NoError(p.t, err)
	return n
}

// sim returns the simulator's quota state of (project, model).
func (p *poolEnv) sim(project, model string) gemsim.ModelStats {
	return p.Sim.Stats().Projects[project].Models[model]
}

// simResponses sums the responses with the given status code that the keys of a
// project received (faults included; 0 is a connection reset).
func (p *poolEnv) simResponses(project string, code int) int64 {
	var n int64
	for _, k := range p.Sim.Stats().Keys {
		if k.Project == project {
			n += k.Responses[code]
		}
	}
	return n
}

// simAccepted sums the requests every project accepted for model.
func (p *poolEnv) simAccepted(model string) int64 {
	var n int64
	for _, ps := range p.Sim.Stats().Projects {
		n += ps.Models[model].Accepted
	}
	return n
}

// sim429 sums the quota 429s the simulator sent for model: the requests it refused
// because a project was over its limit, i.e. what the gateway over-admitted.
func (p *poolEnv) sim429(model string) int64 {
	var n int64
	for _, ps := range p.Sim.Stats().Projects {
		n += ps.Models[model].Rejected429
	}
	return n
}

// injectFault queues a simulator fault on a project's generateContent calls.
func (p *poolEnv) injectFault(project string, f gemsim.Fault, count int) {
	p.t.Helper()
	require.NoError(p.t, p.Sim.InjectFault(gemsim.FaultRule{Project: project, Method: "generateContent", Fault: f, Count: count}))
}

// untilFaultsUsed sends generateContent calls (each must succeed: the gateway fails
// over) until the simulator has no queued fault left, at most max calls.
func (p *poolEnv) untilFaultsUsed(model string, limit int) []reply {
	p.t.Helper()
	var out []reply
	for p.Sim.Stats().PendingFaults > 0 {
		require.Less(p.t, len(out), limit, "the faulty project was never chosen in %d requests", limit)
		r := p.generate(0, model)
		require.Equal(p.t, http.StatusOK, r.status, "the gateway fails over: %s", r)
		out = append(out, r)
	}
	return out
}

// keyStateRow is a row of key_state_log.
type keyStateRow struct {
	Kind, KeyHash, Project, Model, Reason, Source, QuotaID string
	RPM, TPM, RPD                                          uint8
	Until                                                  time.Time
	Status                                                 uint16
	RequestID                                              string
}

// keyStateRows waits until key_state_log has at least want rows matching where, and
// returns them in time order.
func (p *poolEnv) keyStateRows(where string, want int) []keyStateRow {
	p.t.Helper()
	q := "SELECT count() FROM {db}.key_state_log FINAL WHERE " + where
	n, err := p.WaitCount(q, uint64(want), 30*time.Second)
	require.NoError(p.t, err)
	require.GreaterOrEqual(p.t, n, uint64(want), "key_state_log rows where %s", where)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := p.CH.Query(ctx, strings.ReplaceAll(`SELECT kind, key_hash, project, model, reason, source, quota_id,
		rpm_exceeded, tpm_exceeded, rpd_exceeded, until, status, request_id
		FROM {db}.key_state_log FINAL WHERE `+where+` ORDER BY timestamp, id`, "{db}", p.Database))
	require.NoError(p.t, err)
	defer func() { _ = rows.Close() }()
	var out []keyStateRow
	for rows.Next() {
		var r keyStateRow
		require.NoError(p.t, rows.Scan(&r.Kind, &r.KeyHash, &r.Project, &r.Model, &r.Reason, &r.Source, &r.QuotaID,
			&r.RPM, &r.TPM, &r.RPD, &r.Until, &r.Status, &r.RequestID))
		out = append(out, r)
	}
	require.NoError(p.t, rows.Err())
	return out
}

// attempt is one element of a request_logs row's attempts.
type attempt struct {
	Project string
	KeyHash string
	Status  uint16
	Failure string
	Counted uint8
}

// attempts waits for the request_logs row of a request and returns its status and
// upstream attempts.
func (p *poolEnv) attempts(requestID string) (uint16, []attempt) {
	p.t.Helper()
	require.NotEmpty(p.t, requestID)
	_, err := p.WaitCount("SELECT count() FROM {db}.request_logs WHERE request_id = '"+requestID+"'", 1, 30*time.Second)
	require.NoError(p.t, err)
	var (
		status                     uint16
		projects, hashes, failures []string
		statuses                   []uint16
		counted                    []uint8
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(p.t, p.CH.QueryRow(ctx, strings.ReplaceAll(`SELECT status_code, attempts.project, attempts.key_hash,
		attempts.status, attempts.failure, attempts.counted FROM {db}.request_logs FINAL WHERE request_id = ?`, "{db}", p.Database),
		requestID).Scan(&status, &projects, &hashes, &statuses, &failures, &counted))
	out := make([]attempt, len(projects))
	for i := range projects {
		out[i] = attempt{Project: projects[i], KeyHash: hashes[i], Status: statuses[i], Failure: failures[i], Counted: counted[i]}
	}
	return status, out
}

// waitUntil polls cond every 50 ms, in the calling goroutine (so cond may use
// require), until it holds or within has passed.
func waitUntil(t *testing.T, within time.Duration, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			require.Fail(t, "condition not met within "+within.String(), msgAndArgs...)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// roomInMinute returns the end of the current clock minute once at least need is left
// of it, waiting for the next minute when less is. The gateway and the simulator count
// RPM in clock minutes of the same clock, so a test whose requests all fall into one
// minute sees exact counts.
func roomInMinute(t *testing.T, need time.Duration) time.Time {
	t.Helper()
	end := schemas.MinuteEnd(time.Now())
	if left := time.Until(end); left < need {
		t.Logf("waiting %s for the next minute", left.Round(time.Millisecond))
		time.Sleep(left + 50*time.Millisecond)
		end = schemas.MinuteEnd(time.Now())
	}
	return end
}

// secondsUntil is the Retry-After a client should get at `at` for a wait until `until`:
// whole seconds, rounded up.
func secondsUntil(until, at time.Time) int {
	return int(math.Ceil(until.Sub(at).Seconds()))
}

// hashesOf returns the key hashes of a project.
func hashesOf(pc gemsim.ProjectConfig) []string {
	var out []string
	for _, k := range pc.Keys {
		out = append(out, schemas.HashKey(k))
	}
	return out
}
