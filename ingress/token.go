package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/geminicodeapi/gca/ingress/access"
)

// tokenCommand implements `ingress token add -tokens-file F -name N [-models a,b]
// [-rpm N] [-rpd N]`: it issues a gateway token, stores only its hash in the tokens file
// (created 0600 if missing), and prints the token once on stdout.
func tokenCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(stderr, "usage: ingress token add -tokens-file FILE -name NAME [-models m1,m2] [-rpm N] [-rpd N]")
		return 2
	}
	fs := flag.NewFlagSet("token add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("tokens-file", env("GCA_TOKENS_FILE", ""), "tokens file to add to")
	name := fs.String("name", "", "who holds the token (unique)")
	models := fs.String("models", "", "comma-separated models the token may use (default: all)")
	rpm := fs.Int64("rpm", 0, "requests per minute (0: unlimited)")
	rpd := fs.Int64("rpd", 0, "requests per Pacific day (0: unlimited)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *file == "" || *name == "" {
		fmt.Fprintln(stderr, "token add: -tokens-file and -name are required")
		return 2
	}
	if err := addToken(*file, *name, splitList(*models), *rpm, *rpd, stdout); err != nil {
		fmt.Fprintf(stderr, "token add: %v\n", err)
		return 1
	}
	return 0
}

func addToken(path, name string, models []string, rpm, rpd int64, stdout io.Writer) error {
	f := &access.TokenFile{}
	if _, err := os.Stat(path); err == nil {
		if f, err = access.LoadTokens(path); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stat tokens file: %w", err)
	}
	token, entry, err := access.NewToken(name)
	if err != nil {
		return err
	}
	entry.Models, entry.RPM, entry.RPD = models, rpm, rpd
	f.Tokens = append(f.Tokens, entry)
	if err := f.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode tokens file: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write tokens file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace tokens file: %w", err)
	}
	_, err = fmt.Fprintln(stdout, token)
	return err
}
