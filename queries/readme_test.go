package queries

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the queries section of README.md from the files' headers")

var queriesBlock = regexp.MustCompile("(?s)<!-- queries -->\n.*<!-- /queries -->")

// readmeQueries documents every query: what it answers, its parameters, an example.
func readmeQueries(c *Catalog) string {
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	var b strings.Builder
	b.WriteString("<!-- queries -->\n")
	for _, q := range c.List() {
		fmt.Fprintf(&b, "### `%s`\n\n%s\n\n", q.Name, q.Summary)
		if len(q.Params) > 0 {
			b.WriteString("| parameter | type | default | meaning |\n|---|---|---|---|\n")
			for _, p := range q.Params {
				def := p.Default
				if def == "" {
					def = "''"
				}
				fmt.Fprintf(&b, "| `%s` | `%s` | `%s` | %s |\n", p.Name, cell(p.Type.String()), def, cell(p.Description))
			}
			b.WriteString("\n")
		}
		for _, ex := range q.Examples {
			fmt.Fprintf(&b, "```sh\nprocessors query run %s %s\n```\n\n", q.Name, ex)
		}
		fmt.Fprintf(&b, "Definitions and caveats: the header of [`%s.sql`](%s.sql).\n\n", q.Name, q.Name)
	}
	b.WriteString("<!-- /queries -->")
	return b.String()
}

// README.md lists every query as its header documents it.
func TestREADMEQueries(t *testing.T) {
	c, err := Builtin()
	require.NoError(t, err)
	doc, err := os.ReadFile("README.md")
	require.NoError(t, err)
	require.Regexp(t, queriesBlock, string(doc))
	want := queriesBlock.ReplaceAllLiteralString(string(doc), readmeQueries(c))
	if *update {
		require.NoError(t, os.WriteFile("README.md", []byte(want), 0o644))
		return
	}
	require.Equal(t, want, string(doc), "README.md's queries section is stale: go test ./queries -run TestREADMEQueries -update")
}
