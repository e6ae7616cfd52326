// Package sdkcompat has no code of its own: its tests put the official OpenAI Go SDK
// on both ends of package openai's translation. The SDK builds the requests openai
// decodes and parses the responses, stream chunks, errors, embeddings and model lists
// openai produces, so a field the SDK cannot read or a request shape openai cannot
// decode fails here.
//
// The tests live in their own package so that the SDK, a very large dependency, stays
// out of package openai's test binary, which the fuzzers instrument and rebuild.
package sdkcompat
