package cli

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/runtime/api"
)

// prefixScan is how many of the project's latest executions an id prefix
// is matched against. The gateways find an execution by its whole id
// only; older executions are found by their whole id.
const prefixScan = 1000

// maxCandidates is how many executions an ambiguous prefix lists.
const maxCandidates = 10

// checkExecutionArg reports an ID argument that cannot be an execution id
// or a prefix of one, as a usage error.
func checkExecutionArg(verb, arg string) error {
	if arg == "" {
		return usagef("%s: the execution id is empty", verb)
	}
	if i := strings.IndexFunc(arg, func(r rune) bool { return r == '/' || !unicode.IsPrint(r) || unicode.IsSpace(r) }); i >= 0 {
		return usagef("%s %q: an execution id has no %q", verb, arg, arg[i:i+1])
	}
	return nil
}

// executionArg is the Args of a command that takes one execution ID,
// which it stores in id.
func executionArg(verb string, id *string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usagef("%s takes one execution ID argument, got %d", verb, len(args))
		}
		*id = args[0]
		return checkExecutionArg(verb, *id)
	}
}

// findExecution returns the execution arg names, with its timeline: the
// one whose id is arg, else the one whose id starts with arg among the
// project's latest prefixScan executions, as docker takes a unique
// prefix of a container id. A prefix that several executions share is a
// usage error naming them; an id no gateway has is an error.
func findExecution(ctx context.Context, be Backend, project, arg string, now time.Time) (*api.Execution, error) {
	list, err := be.Executions(ctx, project, "", api.ExecutionFilter{Limit: prefixScan})
	if err != nil {
		return nil, fmt.Errorf("find execution %s: %w", arg, err)
	}
	var exact, prefixed []api.ExecutionSummary
	for _, s := range list {
		switch {
		case s.ID == arg:
			exact = append(exact, s)
		case strings.HasPrefix(s.ID, arg):
			prefixed = append(prefixed, s)
		}
	}
	matches := exact
	if len(matches) == 0 {
		matches = prefixed
	}
	if len(matches) > 1 {
		return nil, ambiguous(arg, normalizeExecutions(matches, 0), now)
	}
	cell, id := "", arg
	if len(matches) == 1 {
		cell, id = matches[0].Cell, matches[0].ID
	}
	// An id older than the list is found by the gateways all the same.
	e, err := be.Execution(ctx, project, cell, id)
	switch {
	case err != nil:
		return nil, fmt.Errorf("find execution %s: %w", arg, err)
	case e == nil:
		return nil, fmt.Errorf("no execution %s in project %s (a prefix is looked for among the latest %d executions; give the whole id of an older one)", arg, project, prefixScan)
	}
	if e.Cell == "" {
		e.Cell = cell
	}
	return e, nil
}

// ambiguous is the usage error of an id prefix that several executions
// share, listing them newest first.
func ambiguous(arg string, matches []api.ExecutionSummary, now time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, "execution id %q is ambiguous: the ids of %d executions start with it; give more of it", arg, len(matches))
	for i, s := range matches {
		if i == maxCandidates {
			fmt.Fprintf(&b, "\n  … and %d more", len(matches)-maxCandidates)
			break
		}
		fmt.Fprintf(&b, "\n  %s  %s/%s  %s  %s", s.ID, s.Cell, s.Flow, s.State, ago(now, s.Started))
	}
	return usagef("%s", b.String())
}
