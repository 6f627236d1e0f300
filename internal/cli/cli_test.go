package cli

import (
	"bytes"
	"testing"

	"github.com/spf13/cobra"

	"github.com/docora/docora/internal/command"
	"github.com/docora/docora/internal/output"
)

// Every command's --help shows at least one example (SPEC §2), and every command that prints
// results offers --json.
func TestEveryCommandHasAnExample(t *testing.T) {
	f := &command.Factory{IO: &output.IO{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}, Getenv: func(string) string { return "" }}
	root := NewRootCmd(f)
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		n++
		if c.Example == "" {
			t.Errorf("%q has no example in its --help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if n < 25 {
		t.Fatalf("only %d commands walked", n)
	}
	for _, path := range [][]string{{"app", "list"}, {"app", "show"}, {"app", "onboard"}, {"repo", "list"},
		{"repo", "show"}, {"repo", "add"}, {"sync"}, {"status"}, {"version"}, {"demo"}} {
		c, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		if c.Flags().Lookup("json") == nil {
			t.Errorf("%q has no --json", c.CommandPath())
		}
	}
}
