package main

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/valkey-io/valkey-go"
)

// opsRoute is a handler the ops server serves beside health and metrics.
type opsRoute struct {
	pattern string
	handler http.Handler
}

// adminRoutes are the processors' admin endpoints:
//
//	GET  /admin/check           the consistency check's report (JSON)
//	POST /admin/check?repair=1  check, repair what differs, record the repair
//
// With GCA_ADMIN_TOKEN set they require "Authorization: Bearer <token>"; without it
// they are open to whoever reaches the ops listener (127.0.0.1 by default).
func adminRoutes(cfg *Config, log *slog.Logger) []opsRoute {
	return []opsRoute{{pattern: "/admin/check", handler: &adminCheck{cfg: cfg, log: log.With("admin", "check")}}}
}

type adminCheck struct {
	cfg *Config
	log *slog.Logger
	// busy admits one check at a time (a check reads every key and a day of events)
	// and guards client.
	busy   sync.Mutex
	client valkey.Client
}

// valkey connects on first use, so the process starts while Valkey is down.
func (a *adminCheck) valkey() (valkey.Client, error) {
	if a.client == nil {
		c, err := openValkey(a.cfg)
		if err != nil {
			return nil, err
		}
		a.client = c
	}
	return a.client, nil
}

func (a *adminCheck) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if tok := string(a.cfg.AdminToken); tok != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(tok)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="processors admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong admin token"})
			return
		}
	}
	repair := r.URL.Query().Get("repair")
	doRepair := repair == "1" || repair == "true"
	switch {
	case r.Method == http.MethodPost:
	case r.Method == http.MethodGet && !doRepair:
	default:
		w.Header().Set("Allow", "GET, POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "GET /admin/check, or POST /admin/check?repair=1"})
		return
	}
	if !a.busy.TryLock() {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "a check is already running"})
		return
	}
	defer a.busy.Unlock()
	client, err := a.valkey()
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	rep, err := checkAndRepair(r.Context(), a.cfg, checkOptions(a.cfg, client, a.log), doRepair, "admin api", a.log)
	if err != nil && rep == nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	status := http.StatusOK
	if err != nil {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, rep)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
