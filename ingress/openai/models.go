package openai

import (
	"maps"
	"slices"
	"strings"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// Owners reported in owned_by: Gemini models belong to Google, aliases to the gateway.
const (
	OwnerGoogle  = "google"
	OwnerGateway = "gemini-code-api"
)

// ModelList is the body of GET /v1/models: every Gemini model under its name without
// the "models/" prefix (owned_by google), then every alias in name order (owned_by
// gemini-code-api). An alias that is also a model name is listed once, as the model.
//
//	{"object":"list","data":[{"id":"gemini-2.5-flash","object":"model","created":...,"owned_by":"google"},...]}
func ModelList(models []gemini.Model, aliases map[string]string, created int64) []byte {
	dst := make([]byte, 0, 32+80*(len(models)+len(aliases)))
	dst = append(dst, `{"object":"list","data":[`...)
	seen := make(map[string]bool, len(models))
	n := 0
	for i := range models {
		id := strings.TrimPrefix(models[i].Name, "models/")
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = appendModel(dst, id, OwnerGoogle, created)
		n++
	}
	for _, alias := range slices.Sorted(maps.Keys(aliases)) {
		if alias == "" || seen[alias] {
			continue
		}
		seen[alias] = true
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = appendModel(dst, alias, OwnerGateway, created)
		n++
	}
	return append(dst, "]}"...)
}

// ModelObject is the body of GET /v1/models/{id}.
func ModelObject(id, ownedBy string, created int64) []byte {
	return appendModel(make([]byte, 0, 80+len(id)), id, ownedBy, created)
}

// appendModel appends one model object.
func appendModel(dst []byte, id, ownedBy string, created int64) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"object":"model","created":`...)
	dst = appendInt(dst, created)
	dst = append(dst, `,"owned_by":`...)
	dst = appendString(dst, ownedBy)
	return append(dst, '}')
}
