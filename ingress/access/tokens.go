package access

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/geminicodeapi/gca/ingress/keypool"
	"github.com/geminicodeapi/gca/schemas"
)

// TokenPrefix starts every gateway token, so a leaked token is recognisable (secret
// scanners can look for it) and cannot be mistaken for a Gemini key.
const TokenPrefix = "gca_"

// tokenRandLen is the number of base62 characters after the prefix: 32 × log2(62) ≈
// 190 bits, beyond any guessing.
const tokenRandLen = 32

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Token is a gateway token as the tokens file stores it: never the token itself, only
// its SHA-256.
type Token struct {
	// ID is the token's identifier in events and logs, schemas.HashToken of the token
	// (NewToken fills it in). Optional.
	ID string `json:"id,omitempty"`
	// Name says who holds it; unique.
	Name string `json:"name"`
	// SHA256 is the hex SHA-256 of the token: what a request's token is checked
	// against. `printf %s "$TOKEN" | sha256sum` computes it.
	SHA256 string `json:"sha256"`
	// Models, when set, are the only models the token may use; an entry ending in "*"
	// matches by prefix ("gemini-2.5-*").
	Models []string `json:"models,omitempty"`
	// RPM and RPD limit the token's requests per minute and per Pacific day; 0 is
	// unlimited.
	RPM int64 `json:"rpm,omitempty"`
	RPD int64 `json:"rpd,omitempty"`
	// Disabled refuses the token (403) without deleting it.
	Disabled bool `json:"disabled,omitempty"`
}

// TokenFile is the JSON tokens file: {"tokens": [Token...]}.
type TokenFile struct {
	Tokens []Token `json:"tokens"`
}

var (
	sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
	idPattern     = regexp.MustCompile(`^[0-9a-f]{16}$`)
	modelPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\*?$`)
)

// LoadTokens reads a tokens file. It does not validate; call Validate.
func LoadTokens(path string) (*TokenFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tokens file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f TokenFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode tokens file %s: %w", path, err)
	}
	return &f, nil
}

// Validate reports every problem of the file at once.
func (f *TokenFile) Validate() error {
	var errs []error
	names := map[string]int{}
	hashes := map[string]int{}
	for i, t := range f.Tokens {
		if strings.TrimSpace(t.Name) == "" {
			errs = append(errs, fmt.Errorf("tokens[%d]: name is empty", i))
		} else if j, dup := names[t.Name]; dup {
			errs = append(errs, fmt.Errorf("tokens[%d]: name %q already used by tokens[%d]", i, t.Name, j))
		} else {
			names[t.Name] = i
		}
		switch {
		case strings.HasPrefix(t.SHA256, TokenPrefix):
			// Someone pasted the token itself. Do not repeat it.
			errs = append(errs, fmt.Errorf("tokens[%d] (%s): sha256 holds a token, not its hash: store only the hash", i, t.Name))
		case !sha256Pattern.MatchString(t.SHA256):
			errs = append(errs, fmt.Errorf("tokens[%d] (%s): sha256 must be 64 lowercase hex digits", i, t.Name))
		default:
			if j, dup := hashes[t.SHA256]; dup {
				errs = append(errs, fmt.Errorf("tokens[%d] (%s): same token as tokens[%d]", i, t.Name, j))
			}
			hashes[t.SHA256] = i
		}
		if t.ID != "" && !idPattern.MatchString(t.ID) {
			errs = append(errs, fmt.Errorf("tokens[%d] (%s): id must be 16 lowercase hex digits (schemas.HashToken)", i, t.Name))
		}
		if t.RPM < 0 || t.RPD < 0 {
			errs = append(errs, fmt.Errorf("tokens[%d] (%s): rpm and rpd must not be negative", i, t.Name))
		}
		for _, m := range t.Models {
			if !modelPattern.MatchString(keypool.NormalizeModel(m)) {
				errs = append(errs, fmt.Errorf("tokens[%d] (%s): model %q is not a model name", i, t.Name, m))
			}
		}
	}
	return errors.Join(errs...)
}

// NewToken returns a new random token (TokenPrefix + 32 base62 characters) and its
// entry for the tokens file. Give the token to its holder once; store only the entry.
func NewToken(name string) (token string, entry Token, err error) {
	b := make([]byte, 0, len(TokenPrefix)+tokenRandLen)
	b = append(b, TokenPrefix...)
	var buf [64]byte
	for len(b) < cap(b) {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", Token{}, fmt.Errorf("new token: %w", err)
		}
		for _, r := range buf {
			// 248 = 4 × 62: rejecting the top 8 values keeps every character equally likely.
			if r < 248 && len(b) < cap(b) {
				b = append(b, base62[r%62])
			}
		}
	}
	token = string(b)
	return token, Token{ID: schemas.HashToken(token), Name: name, SHA256: TokenSHA256(token)}, nil
}

// TokenSHA256 is the stored form of a token: its SHA-256 in lowercase hex.
func TokenSHA256(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// tokenStore finds tokens by their SHA-256.
//
// Why a map lookup is safe here: the map is keyed by SHA-256(token), and the attacker
// chooses the token, not its hash. Whatever timing a lookup leaks is about the hashes
// of the attacker's own guesses compared against stored hashes; turning that into a
// token that matches would take a SHA-256 preimage. The tokens carry 190 bits, so
// guessing is hopeless anyway, and the failure limit caps the attempts. The entry found
// is still compared in constant time (crypto/subtle), so the final equality decision
// leaks nothing even if the map's hashing were predictable.
type tokenStore struct {
	byHash map[[32]byte]*Token
}

func newTokenStore(f *TokenFile) *tokenStore {
	s := &tokenStore{byHash: make(map[[32]byte]*Token, len(f.Tokens))}
	for i := range f.Tokens {
		t := &f.Tokens[i]
		var h [32]byte
		if _, err := hex.Decode(h[:], []byte(t.SHA256)); err == nil {
			s.byHash[h] = t
		}
	}
	return s
}

func (s *tokenStore) lookup(token string) *Token {
	sum := sha256.Sum256([]byte(token))
	t := s.byHash[sum]
	if t == nil {
		return nil
	}
	var stored [32]byte
	if _, err := hex.Decode(stored[:], []byte(t.SHA256)); err != nil {
		return nil
	}
	if subtle.ConstantTimeCompare(stored[:], sum[:]) != 1 {
		return nil
	}
	return t
}

// allows reports whether the token may use model.
func (t *Token) allows(model string) bool {
	if len(t.Models) == 0 {
		return true
	}
	model = keypool.NormalizeModel(model)
	for _, m := range t.Models {
		m = keypool.NormalizeModel(m)
		if p, ok := strings.CutSuffix(m, "*"); ok {
			if strings.HasPrefix(model, p) {
				return true
			}
		} else if m == model {
			return true
		}
	}
	return false
}
