package openai

import (
	"strings"
)

// parseDataURL splits an image_url of the form data:<mime>;base64,<data>. It returns a
// reason, phrased for the client, when the URL is anything else: remote URLs are
// refused because the gateway never fetches them (no SSRF, no latency spent
// downloading on the request path). The base64 itself is not decoded here; Gemini
// rejects bad base64 with a 400 of its own.
func parseDataURL(url string) (mime, data, problem string) {
	scheme, rest, ok := strings.Cut(url, ":")
	if !ok {
		return "", "", "image_url must be a data: URL (data:<mime type>;base64,<data>)."
	}
	switch strings.ToLower(scheme) {
	case "data":
	case "http", "https":
		return "", "", "image_url must be a data: URL; remote URLs are not fetched by this gateway."
	default:
		return "", "", "image_url must be a data: URL; the " + strings.ToLower(scheme) + " scheme is not supported."
	}
	meta, payload, ok := strings.Cut(rest, ",")
	if !ok {
		return "", "", "the data: URL has no comma before its data."
	}
	const b64 = ";base64"
	if len(meta) < len(b64) || !strings.EqualFold(meta[len(meta)-len(b64):], b64) {
		return "", "", "the data: URL must be base64-encoded (data:<mime type>;base64,<data>)."
	}
	// Parameters such as ;charset=... may sit between the type and ;base64.
	mime, _, _ = strings.Cut(meta, ";")
	if mime == "" || !strings.Contains(mime, "/") {
		return "", "", "the data: URL must name a MIME type such as image/png."
	}
	if payload == "" {
		return "", "", "the data: URL carries no data."
	}
	return strings.ToLower(mime), payload, ""
}
