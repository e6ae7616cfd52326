//go:build faults

package faults

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// secretProjects are two projects whose keys look like real Gemini keys (39
// characters, "AIza" first), so any redaction that relies on the shape is exercised.
func secretProjects() []gemsim.ProjectConfig {
	var ps []gemsim.ProjectConfig
	for p := 1; p <= 2; p++ {
		pc := gemsim.ProjectConfig{ID: fmt.Sprintf("sec-p%d", p), Tier: gemsim.TierOne}
		for k := 1; k <= 2; k++ {
			pc.Keys = append(pc.Keys, fmt.Sprintf("AIzaSyFaultSecretP%dK%d%s", p, k, randomHex(9)))
		}
		ps = append(ps, pc)
	}
	return ps
}

// leak is one place a secret was found.
type leak struct{ secret, where string }

// TestFaultSecrets runs traffic that touches every secret — the pool's Gemini keys, a
// key added through the admin API, a pass-through client's keys, the gateway token and
// the admin token — including upstream errors whose messages quote the key, then
// searches every log line of both binaries, every Kafka record of the test's topics,
// every String column of every ClickHouse table of the test's database, the /metrics
// of both binaries and every answer the clients got (bodies and headers). No secret may
// appear anywhere. It also checks that the admin API refuses without its token and
// with a wrong one, and that CORS headers appear only for a configured origin.
func TestFaultSecrets(t *testing.T) {
	projects := secretProjects()
	// Debug logs: the most a binary ever writes about a request.
	env := e2e.Start(t, unlimited(e2e.Options{
		Projects:      projects,
		IngressEnv:    []string{"GCA_CORS_ORIGINS=https://app.example", "GCA_LOG_LEVEL=debug"},
		ProcessorsEnv: []string{"GCA_LOG_LEVEL=debug"},
	}))
	in := env.Ingress[0]
	base := "http://" + in.Addr
	// A second ingress in pass-through mode: clients send Gemini keys themselves.
	pass := env.AddIngress("GCA_AUTH_MODE=passthrough", "GCA_CORS_ORIGINS=")
	passBase := "http://" + pass.Addr
	var poolKeys []string
	for _, p := range projects {
		poolKeys = append(poolKeys, p.Keys...)
	}
	addedKey := "AIzaSyFaultSecretADDED" + randomHex(9)[:17]
	secrets := append(append([]string{}, poolKeys...), addedKey, env.Token, env.AdminToken)

	var answers []rawResult
	keep := func(r result) {
		answers = append(answers, rawResult{status: r.Status, header: r.Header, body: r.Body})
	}
	hc := newHTTPClient(10 * time.Second)
	for _, p := range protocols {
		for _, stream := range []bool{false, true} {
			keep(send(context.Background(), hc, base, env.Token, call{Proto: p, Stream: stream}))
		}
	}
	// Upstream errors that quote the key: in a message, a 429 (cool-down event), a 400
	// API_KEY_INVALID (disable event) and a 500, in every protocol.
	for i, p := range protocols {
		k := poolKeys[i%len(poolKeys)]
		for _, f := range []gemsim.Fault{
			{Status: 429, Message: "Quota exceeded for key " + k + ". Please retry in 2s."},
			{Status: 400, Message: "API key not valid: " + k + " (https://generativelanguage.googleapis.com/v1beta/models?key=" + k + ")"},
			{Status: 500, Message: "internal error while serving key=" + k},
			{ErrorIn200: true, Message: "error for " + k},
		} {
			require.NoError(t, env.Sim.InjectFault(gemsim.FaultRule{Key: k, Fault: f, Count: 1}))
		}
		for range 6 {
			keep(send(context.Background(), hc, base, env.Token, call{Proto: p}))
		}
	}
	env.Sim.ClearFaults()
	// Pass-through clients: their keys in the header, in ?key=, a list of keys, and a
	// wrong key shaped like a real one.
	for _, c := range []struct{ proto, key string }{
		{pGemini, poolKeys[0]}, {pOpenAI, poolKeys[1] + "," + poolKeys[2]}, {pClaude, poolKeys[3]},
		{pGemini, "AIzaSyFaultSecretWRONG" + strings.Repeat("w", 17)},
	} {
		keep(send(context.Background(), hc, passBase, c.key, call{Proto: c.proto}))
		secrets = appendUnique(secrets, strings.Split(c.key, ",")...)
	}
	req, _ := http.NewRequest(http.MethodPost, passBase+"/v1beta/models/gemini-2.5-flash:generateContent?key="+poolKeys[0],
		strings.NewReader(`{"contents":[{"parts":[{"text":"hi"}]}]}`))
	req.Header.Set("Content-Type", "application/json")
	keep(doHTTP(t, hc, req))

	// Admin API: refused without its token and with a wrong one; an operator adds a key.
	adminCases := []struct {
		name, header string
		want         int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer " + flip(env.AdminToken), http.StatusUnauthorized},
		{"client token", "Bearer " + env.Token, http.StatusUnauthorized},
		{"unknown scheme", "Basic " + basic(env.AdminToken), http.StatusUnauthorized},
	}
	for _, c := range adminCases {
		req, _ := http.NewRequest(http.MethodGet, base+"/admin/keys", nil)
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		r := doHTTP(t, hc, req)
		require.Equal(t, c.want, r.Status, "admin, %s: %s", c.name, r.Body)
		keep(r)
	}
	req, _ = http.NewRequest(http.MethodPost, base+"/admin/keys", strings.NewReader(fmt.Sprintf(`{"key":%q,"project":"sec-p9","tier":"tier1"}`, addedKey)))
	req.Header.Set("Authorization", "Bearer "+env.AdminToken)
	r := doHTTP(t, hc, req)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	keep(r)
	for _, path := range []string{"/admin/keys", "/admin/spool", "/admin/caches", "/admin/blacklist/stats"} {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+env.AdminToken)
		r := doHTTP(t, hc, req)
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", path, r.Body)
		keep(r)
	}
	for _, p := range protocols {
		keep(send(context.Background(), hc, base, env.Token, call{Proto: p}))
	}

	// CORS: headers only for the configured origin, never for another or on an ingress
	// without GCA_CORS_ORIGINS.
	corsCases := []struct {
		name, base, origin, method string
		allowed                    bool
	}{
		{"configured origin", base, "https://app.example", http.MethodPost, true},
		{"configured origin, preflight", base, "https://app.example", http.MethodOptions, true},
		{"other origin", base, "https://evil.example", http.MethodPost, false},
		{"other origin, preflight", base, "https://evil.example", http.MethodOptions, false},
		{"no CORS configured", passBase, "https://app.example", http.MethodPost, false},
		{"no CORS configured, preflight", passBase, "https://app.example", http.MethodOptions, false},
	}
	for _, c := range corsCases {
		req, _ := http.NewRequest(c.method, c.base+"/v1/chat/completions", strings.NewReader(`{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Origin", c.origin)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Authorization", "Bearer "+env.Token)
		r := doHTTP(t, hc, req)
		keep(r)
		var cors []string
		for h := range r.Header {
			if strings.HasPrefix(strings.ToLower(h), "access-control-") {
				cors = append(cors, h)
			}
		}
		if c.allowed {
			require.Equal(t, c.origin, r.Header.Get("Access-Control-Allow-Origin"), c.name)
		} else {
			require.Empty(t, cors, "%s: CORS headers %v", c.name, cors)
		}
	}

	// Let every event reach ClickHouse, then search everything.
	a := settle(t, env, scope{Stats: true}, nil, in, pass)
	var leaks []leak
	find := func(where string, data []byte) {
		for _, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				leaks = append(leaks, leak{s[:10] + "…", where})
			}
		}
	}
	logLines, scraped := 0, 0
	for _, p := range append([]*e2e.Proc{env.Processors}, env.Ingress...) {
		out := p.Output()
		logLines += strings.Count(out, "\n")
		find(p.Name+" log", []byte(out))
		m, err := scrape(p.Addr)
		require.NoError(t, err)
		find(p.Name+" /metrics", []byte(m))
		scraped++
	}
	records := 0
	for _, topic := range []string{env.Topics.Requests, env.Topics.KeyState, env.Topics.Audit, env.Topics.DeadLetter} {
		for _, m := range topicRecords(t, topic) {
			records++
			find("kafka "+topic+" key", m.Key)
			find("kafka "+topic+" value", m.Value)
			for _, h := range m.Headers {
				find("kafka "+topic+" header "+h.Key, h.Value)
			}
		}
	}
	for i, ans := range answers {
		find(fmt.Sprintf("answer %d body", i), ans.body)
		for k, vs := range ans.header {
			find(fmt.Sprintf("answer %d header %s", i, k), []byte(strings.Join(vs, "\n")))
		}
	}
	rows, columns := searchClickHouse(t, env, secrets, &leaks)
	require.Positive(t, records)
	require.Empty(t, leaks, "secrets in plain text")
	noPanic(t, env.Ingress...)
	noPanic(t, env.Processors)
	a.Served = len(answers)
	a.Scenario = "secrets, admin API, CORS"
	a.Note = fmt.Sprintf("%d secrets × %d log lines, %d Kafka records (4 topics), %d ClickHouse rows × %d String columns, %d /metrics pages, %d answers: 0 hits; upstream messages quoting keys redacted; admin 401 without/with wrong token; CORS only for the configured origin",
		len(secrets), logLines, records, rows, columns, scraped, len(answers))
	report(t, a.row)
}

func appendUnique(s []string, add ...string) []string {
	for _, a := range add {
		found := false
		for _, x := range s {
			found = found || x == a
		}
		if !found {
			s = append(s, a)
		}
	}
	return s
}

func doHTTP(t *testing.T, hc *http.Client, req *http.Request) result {
	t.Helper()
	resp, err := hc.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return result{Status: resp.StatusCode, Header: resp.Header, Body: b, RequestID: resp.Header.Get("X-Request-Id")}
}

// searchClickHouse looks for the secrets in every String, LowCardinality(String) and
// Array(String) column of every table of the test's database, and returns how many
// rows and columns it searched.
func searchClickHouse(t *testing.T, env *e2e.Env, secrets []string, leaks *[]leak) (rows, columns int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cr, err := env.CH.Query(ctx, fmt.Sprintf(`SELECT c.table, c.name, c.type FROM system.columns AS c
		WHERE c.database = '%s' AND c.type LIKE '%%String%%' AND c.type NOT LIKE 'AggregateFunction%%'
		AND c.table IN (SELECT name FROM system.tables WHERE database = '%s' AND engine NOT IN ('View', 'MaterializedView'))`, env.Database, env.Database))
	require.NoError(t, err)
	cols := map[string][]string{}
	for cr.Next() {
		var table, name, typ string
		require.NoError(t, cr.Scan(&table, &name, &typ))
		expr := "toString(`" + name + "`)"
		if strings.HasPrefix(typ, "Array") {
			expr = "arrayStringConcat(`" + name + "`, ' ')"
		}
		cols[table] = append(cols[table], expr)
		columns++
	}
	_ = cr.Close()
	require.NotEmpty(t, cols)
	for table, exprs := range cols {
		var n uint64
		require.NoError(t, env.CH.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.`%s`", env.Database, table)).Scan(&n))
		rows += int(n)
		for _, s := range secrets {
			var conds []string
			for _, e := range exprs {
				conds = append(conds, fmt.Sprintf("position(%s, '%s') > 0", e, s))
			}
			var hits uint64
			require.NoError(t, env.CH.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.`%s` WHERE %s", env.Database, table, strings.Join(conds, " OR "))).Scan(&hits))
			if hits > 0 {
				*leaks = append(*leaks, leak{s[:10] + "…", fmt.Sprintf("clickhouse %s (%d rows)", table, hits)})
			}
		}
	}
	return rows, columns
}
