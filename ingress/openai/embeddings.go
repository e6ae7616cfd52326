package openai

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// Limits of the embeddings endpoint.
const (
	// MaxEmbeddingInputs is OpenAI's limit on the number of inputs of one request.
	MaxEmbeddingInputs = 2048
	// MaxEmbedBatch is Gemini's limit on the requests of one batchEmbedContents call.
	MaxEmbedBatch = 100
)

// Embedding encoding formats.
const (
	EncodingFloat  = "float"
	EncodingBase64 = "base64"
)

// EmbeddingRequest is the body of POST /v1/embeddings.
type EmbeddingRequest struct {
	Model          string         `json:"model"`
	Input          EmbeddingInput `json:"input"`
	EncodingFormat string         `json:"encoding_format"`
	Dimensions     *int           `json:"dimensions"`
	// User is accepted and ignored.
	User string `json:"user"`
}

// EmbeddingInput is input: a string or an array of strings. Token arrays (arrays of
// integers, or arrays of them) are tiktoken ids, which mean nothing to Gemini; they
// are refused.
type EmbeddingInput struct {
	Texts []string
	// Present is false when input was missing or null.
	Present bool
}

// UnmarshalJSON accepts a string or an array of strings and refuses token arrays by
// name.
func (in *EmbeddingInput) UnmarshalJSON(b []byte) error {
	switch firstByte(b) {
	case 'n':
		*in = EmbeddingInput{}
		return nil
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return asDecodeError("input", err)
		}
		*in = EmbeddingInput{Texts: []string{s}, Present: true}
		return nil
	case '[':
		switch firstByte(b[1:]) {
		case '[', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return valueError("input", CodeUnsupportedValue, "token arrays are not supported by this gateway; send text.")
		}
		var texts []string
		if err := json.Unmarshal(b, &texts); err != nil {
			if de := locate[string](b, "input"); de != nil {
				return de
			}
			return asDecodeError("input", err)
		}
		*in = EmbeddingInput{Texts: texts, Present: true}
		return nil
	}
	return typeError("input", "a string or an array of strings", jsonKind(b))
}

// DecodeEmbeddingRequest parses and validates an embeddings body. Errors are *Error
// (status 400) naming the offending field.
func DecodeEmbeddingRequest(body []byte) (*EmbeddingRequest, error) {
	var r EmbeddingRequest
	if err := json.Unmarshal(body, &r); err != nil {
		if e := malformedBody(body, err); e != nil {
			return nil, e
		}
		return nil, asDecodeError("", err).toError()
	}
	if r.Model == "" {
		return nil, invalidRequest("model", CodeMissingParameter, "You must provide a model parameter.")
	}
	if !r.Input.Present {
		return nil, invalidRequest("input", CodeMissingParameter, "Missing required parameter: 'input'.")
	}
	switch n := len(r.Input.Texts); {
	case n == 0:
		return nil, invalidRequest("input", CodeInvalidValue, "Invalid 'input': empty array. Expected an array with minimum length 1.")
	case n > MaxEmbeddingInputs:
		return nil, invalidRequest("input", CodeInvalidValue, "Invalid 'input': at most "+strconv.Itoa(MaxEmbeddingInputs)+" inputs are allowed, got "+strconv.Itoa(n)+".")
	}
	for i, s := range r.Input.Texts {
		if strings.TrimSpace(s) == "" {
			p := "input[" + strconv.Itoa(i) + "]"
			return nil, invalidRequest(p, CodeInvalidValue, "Invalid '"+p+"': the input cannot be an empty string.")
		}
	}
	switch r.EncodingFormat {
	case "", EncodingFloat, EncodingBase64:
	default:
		return nil, invalidRequest("encoding_format", CodeInvalidValue, "Invalid value for 'encoding_format': supported values are float and base64.")
	}
	if r.Dimensions != nil && *r.Dimensions < 1 {
		return nil, invalidRequest("dimensions", CodeInvalidValue, "Invalid 'dimensions': must be at least 1.")
	}
	return &r, nil
}

// EmbedCalls is the Gemini work for one embeddings request. Exactly one of Single and
// Batches is set: one input is an embedContent call, several are batchEmbedContents
// calls of at most MaxEmbedBatch requests each (OpenAI allows 2048 inputs, Gemini 100
// per batch), in input order.
type EmbedCalls struct {
	Single  *gemini.EmbedContentRequest        `json:"single,omitempty"`
	Batches []gemini.BatchEmbedContentsRequest `json:"batches,omitempty"`
}

// ToGeminiEmbed translates the request for the Gemini model (the name after alias
// resolution, with or without "models/"). dimensions becomes outputDimensionality.
func (r *EmbeddingRequest) ToGeminiEmbed(model string) EmbedCalls {
	if len(r.Input.Texts) == 1 {
		return EmbedCalls{Single: &gemini.EmbedContentRequest{
			Content:              gemini.Content{Parts: []gemini.Part{{Text: r.Input.Texts[0]}}},
			OutputDimensionality: r.Dimensions,
		}}
	}
	name := "models/" + strings.TrimPrefix(model, "models/")
	texts := r.Input.Texts
	batches := make([]gemini.BatchEmbedContentsRequest, 0, (len(texts)+MaxEmbedBatch-1)/MaxEmbedBatch)
	for start := 0; start < len(texts); start += MaxEmbedBatch {
		end := min(start+MaxEmbedBatch, len(texts))
		reqs := make([]gemini.EmbedContentRequest, end-start)
		for i := range reqs {
			reqs[i] = gemini.EmbedContentRequest{
				Model:                name,
				Content:              gemini.Content{Parts: []gemini.Part{{Text: texts[start+i]}}},
				OutputDimensionality: r.Dimensions,
			}
		}
		batches = append(batches, gemini.BatchEmbedContentsRequest{Requests: reqs})
	}
	return EmbedCalls{Batches: batches}
}

// FromGeminiEmbed builds the embeddings response from Gemini's vectors, in input order
// (the embedding of a Single call, or the embeddings of the Batches concatenated).
// promptTokens is the gateway's estimate: Gemini's embed responses carry no usage.
//
// Vectors are scaled to unit length when they are not already: OpenAI's embeddings are
// normalised and clients compare them with dot products, while Gemini normalises only
// full-size vectors (not those cut down with outputDimensionality).
//
// It returns a 502 *Error when Gemini answered with a different number of vectors
// than there were inputs.
func FromGeminiEmbed(r *EmbeddingRequest, embeddings []gemini.ContentEmbedding, promptTokens int64) ([]byte, error) {
	if len(embeddings) != len(r.Input.Texts) {
		return nil, NewError(http.StatusBadGateway, TypeServer, "", "",
			"Upstream returned "+strconv.Itoa(len(embeddings))+" embeddings for "+strconv.Itoa(len(r.Input.Texts))+" inputs.")
	}
	size := 64 + len(r.Model)
	for i := range embeddings {
		size += 48 + 12*len(embeddings[i].Values)
	}
	dst := make([]byte, 0, size)
	dst = append(dst, `{"object":"list","data":[`...)
	var scratch []byte
	for i := range embeddings {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"object":"embedding","index":`...)
		dst = appendInt(dst, int64(i))
		dst = append(dst, `,"embedding":`...)
		values := embeddings[i].Values
		scale := unitScale(values)
		if r.EncodingFormat == EncodingBase64 {
			scratch = scratch[:0]
			for _, v := range values {
				scratch = binary.LittleEndian.AppendUint32(scratch, math.Float32bits(v*scale))
			}
			dst = append(dst, '"')
			dst = base64.StdEncoding.AppendEncode(dst, scratch)
			dst = append(dst, '"')
		} else {
			dst = append(dst, '[')
			for k, v := range values {
				if k > 0 {
					dst = append(dst, ',')
				}
				dst = appendFloat32(dst, v*scale)
			}
			dst = append(dst, ']')
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `],"model":`...)
	dst = appendString(dst, r.Model)
	dst = append(dst, `,"usage":{"prompt_tokens":`...)
	dst = appendInt(dst, promptTokens)
	dst = append(dst, `,"total_tokens":`...)
	dst = appendInt(dst, promptTokens)
	return append(dst, "}}"...), nil
}

// unitScale is the factor that gives v unit length: 1 when it already has it (within
// float32 rounding) or is all zeros.
func unitScale(v []float32) float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	norm := math.Sqrt(sum)
	if norm == 0 || math.IsNaN(norm) || math.IsInf(norm, 0) || math.Abs(norm-1) < 1e-4 {
		return 1
	}
	return float32(1 / norm)
}

// appendFloat32 appends v in the shortest form that reads back as the same float32;
// NaN and infinities, which JSON cannot carry, become 0.
func appendFloat32(dst []byte, v float32) []byte {
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return append(dst, '0')
	}
	return strconv.AppendFloat(dst, float64(v), 'g', -1, 32)
}
