package gemsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// maxControlBody bounds control-API request bodies.
const maxControlBody = 1 << 20

// controlError is the body of a failed control-API call.
type controlError struct {
	Error string `json:"error"`
}

// keysRequest is the body of POST /sim/config/keys.
type keysRequest struct {
	Projects []ProjectConfig `json:"projects"`
}

// serveControl routes the control API under /sim/. It needs no Gemini key:
//
//	GET    /sim/healthz       liveness
//	GET    /sim/stats         Stats
//	POST   /sim/reset         clear counters, windows and faults
//	GET    /sim/faults        queued faults
//	POST   /sim/faults        queue a FaultRule
//	DELETE /sim/faults        drop every fault
//	POST   /sim/config/keys   add projects and keys: {"projects":[...]}
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	switch r.Method + " " + r.URL.Path {
	case "GET /sim/healthz":
		writeControl(w, http.StatusOK, map[string]string{"status": "ok"})
	case "GET /sim/stats":
		writeControl(w, http.StatusOK, s.Stats())
	case "POST /sim/reset":
		s.Reset()
		s.log.Info("counters and faults reset")
		writeControl(w, http.StatusOK, map[string]string{"status": "reset"})
	case "GET /sim/faults":
		writeControl(w, http.StatusOK, map[string]any{"faults": s.Faults()})
	case "POST /sim/faults":
		var rule FaultRule
		if !readControl(w, r, &rule) {
			return
		}
		if err := s.InjectFault(rule); err != nil {
			writeControl(w, http.StatusBadRequest, controlError{err.Error()})
			return
		}
		writeControl(w, http.StatusOK, map[string]int{"queued": max(rule.Count, 1)})
	case "DELETE /sim/faults":
		writeControl(w, http.StatusOK, map[string]int64{"cleared": s.ClearFaults()})
	case "POST /sim/config/keys":
		var req keysRequest
		if !readControl(w, r, &req) {
			return
		}
		if err := s.AddProjects(req.Projects); err != nil {
			writeControl(w, http.StatusBadRequest, controlError{err.Error()})
			return
		}
		writeControl(w, http.StatusOK, map[string]int{"projects": len(req.Projects)})
	default:
		writeControl(w, http.StatusNotFound, controlError{"no control route " + r.Method + " " + r.URL.Path})
	}
}

// readControl decodes a control body strictly; on failure it answers 400.
func readControl(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
	}
	if err != nil {
		writeControl(w, http.StatusBadRequest, controlError{"decode body: " + err.Error()})
		return false
	}
	return true
}

// writeControl sends a control-API JSON answer.
func writeControl(w http.ResponseWriter, code int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code, body = http.StatusInternalServerError, []byte(`{"error":"encode answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// AddProjects adds projects and keys at run time. A project that exists gains the new
// keys and keeps its quota state; a key that exists already is an error.
func (s *Server) AddProjects(projects []ProjectConfig) error {
	if err := s.keys.add(projects); err != nil {
		return err
	}
	for _, p := range projects {
		s.log.Info("keys added", "project", p.ID, "keys", len(p.Keys), "forbidden_keys", len(p.ForbiddenKeys))
	}
	return nil
}

// InjectFault queues a fault rule; its key or project must be known.
func (s *Server) InjectFault(r FaultRule) error {
	if err := r.validate(); err != nil {
		return fmt.Errorf("inject fault: %w", err)
	}
	t := s.keys.snapshot()
	if _, ok := t.keys[r.Key]; r.Key != "" && !ok {
		return fmt.Errorf("inject fault: unknown key %s", r.Key)
	}
	if _, ok := t.projects[r.Project]; r.Project != "" && !ok {
		return fmt.Errorf("inject fault: unknown project %s", r.Project)
	}
	s.faults.add(r)
	s.log.Info("fault queued", "key", r.Key, "project", r.Project, "method", r.Method, "count", max(r.Count, 1))
	return nil
}

// ClearFaults drops every queued fault and returns how many uses were left.
func (s *Server) ClearFaults() int64 {
	return s.faults.clear()
}

// Faults lists the queued fault rules with the uses they have left.
func (s *Server) Faults() []FaultRule {
	return s.faults.list()
}
