// Command compose-config loads compose files the way `docker compose config` does, with
// compose-go (the loader docker compose itself uses): schema validation, interpolation from
// the environment and .env, env_file checks, profiles, merge and normalisation. It prints the
// resolved model, or the error and exit status 1. No Docker engine is needed.
//
//	compose-config [-q] [--profile NAME]... -f FILE [-f FILE]...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var files, profiles list
	flag.Var(&files, "f", "compose file (repeatable)")
	flag.Var(&profiles, "profile", "profile to enable (repeatable)")
	quiet := flag.Bool("q", false, "only validate, print nothing")
	flag.Parse()
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "compose-config: name at least one file with -f")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions(
		files,
		cli.WithOsEnv,
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
		cli.WithResolvedPaths(true),
	)
	if err == nil {
		var project *types.Project
		project, err = opts.LoadProject(context.Background())
		if err == nil && !*quiet {
			var out []byte
			out, err = project.MarshalYAML()
			if err == nil {
				_, err = os.Stdout.Write(out)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "compose-config: %v\n", err)
		os.Exit(1)
	}
}
