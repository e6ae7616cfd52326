package schemas

import (
	"crypto/sha256"
	"encoding/hex"
)

// HashKey returns the identifier of a Gemini API key in events, logs, tables and Valkey:
// the first 16 hex digits of its SHA-256. Keys have ~200 bits of entropy, so the hash
// cannot be reversed, and 64 bits keep a pool of any realistic size collision-free.
func HashKey(key string) string { return hash16("gemini-key:", key) }

// HashToken returns the identifier of a gateway client token. Tokens are stored only in
// this form; see the ingress's token store for how they are compared.
func HashToken(token string) string { return hash16("gateway-token:", token) }

func hash16(domain, s string) string {
	sum := sha256.Sum256([]byte(domain + s))
	return hex.EncodeToString(sum[:8])
}
