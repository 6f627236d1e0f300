// Command gendocs writes docora's shell completions (completions/), man pages (man/) and the
// Markdown command reference (docs/cli/). The output is deterministic (no dates), so CI
// regenerates it and fails on any difference.
//
//	go run ./internal/gendocs [-out DIR]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra/doc"

	"github.com/docora/docora/internal/cli"
	"github.com/docora/docora/internal/command"
	"github.com/docora/docora/internal/output"
)

func main() {
	out := flag.String("out", ".", "directory that receives completions/ and man/")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	f := &command.Factory{IO: &output.IO{Out: &bytes.Buffer{}, ErrOut: os.Stderr}, Getenv: func(string) string { return "" }}
	root := cli.NewRootCmd(f)
	root.DisableAutoGenTag = true

	compDir := filepath.Join(out, "completions")
	manDir := filepath.Join(out, "man")
	mdDir := filepath.Join(out, "docs", "cli")
	for _, d := range []string{compDir, manDir, mdDir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	gens := map[string]func(*bytes.Buffer) error{
		"docora.bash": func(b *bytes.Buffer) error { return root.GenBashCompletionV2(b, true) },
		"docora.zsh":  func(b *bytes.Buffer) error { return root.GenZshCompletion(b) },
		"docora.fish": func(b *bytes.Buffer) error { return root.GenFishCompletion(b, true) },
		"docora.ps1":  func(b *bytes.Buffer) error { return root.GenPowerShellCompletionWithDesc(b) },
	}
	for name, gen := range gens {
		var b bytes.Buffer
		if err := gen(&b); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(compDir, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	date := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // fixed: the pages must not change with the clock
	if err := doc.GenManTree(root, &doc.GenManHeader{Title: "DOCORA", Section: "1", Date: &date,
		Source: "docora", Manual: "docora manual"}, manDir); err != nil {
		return err
	}
	return doc.GenMarkdownTree(root, mdDir)
}
