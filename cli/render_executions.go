package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
)

// shortIDLen is how much of an execution id tables show, as docker shows
// container ids: enough to tell executions apart and to paste back.
const shortIDLen = 12

// normalizeExecutions returns a copy of list sorted newest first (then by
// cell and id, so the order is stable) and cut to limit, never nil, so
// the JSON of an empty list is [].
func normalizeExecutions(list []api.ExecutionSummary, limit int) []api.ExecutionSummary {
	out := slices.Clone(list)
	if out == nil {
		out = []api.ExecutionSummary{}
	}
	slices.SortStableFunc(out, func(a, b api.ExecutionSummary) int {
		return cmp.Or(b.Started.Compare(a.Started), cmp.Compare(a.Cell, b.Cell), cmp.Compare(a.ID, b.ID))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// writeJSON prints v as indented JSON, as every --json output is.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Errors such as "answered 402, which on_status fails" and routes stay
	// readable.
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// runsTable renders the `flows runs` table.
type runsTable struct {
	pal     Palette
	now     time.Time
	noTrunc bool
}

func (t runsTable) write(w io.Writer, list []api.ExecutionSummary) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintf(tw, "ID\tCELL\tFLOW\t%s\tSTARTED\tDURATION\tFAILED STEP\tRECOVERED\n", stateCell(t.pal, "STATE", ""))
	for _, s := range list {
		id := s.ID
		if !t.noTrunc {
			id = shortID(id)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dash(id), dash(s.Cell), dash(s.Flow),
			stateCell(t.pal, dash(s.State), s.State), ago(t.now, s.Started), fmtMs(s.DurationMs),
			dash(s.FailedStep), yesOrDash(s.Recovered))
	}
	return tw.Flush()
}

// shortID is the first shortIDLen characters of an execution id.
func shortID(id string) string {
	if len(id) > shortIDLen {
		return id[:shortIDLen]
	}
	return id
}

func yesOrDash(b bool) string {
	if b {
		return "yes"
	}
	return "-"
}

// ago says how long before now t was, in its largest unit, as docker ps
// does: "45s ago", "3m ago", "5h ago", "2d ago".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		// Also a clock a little behind the gateway's.
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// fmtMs shows a duration given in milliseconds: "0.4ms", "15.9ms",
// "180ms", from a second on "13.1s", from a minute on "2m5s"; "-" for
// none (an execution still running).
func fmtMs(ms float64) string {
	switch {
	case ms <= 0:
		return "-"
	case ms < 1000:
		return shortFloat(ms) + "ms"
	case ms < 60_000:
		return strconv.FormatFloat(ms/1000, 'f', 1, 64) + "s"
	}
	return (time.Duration(ms * float64(time.Millisecond))).Round(time.Second).String()
}

// stateCell colours the state of an execution, a step or a compensation,
// as ps colours health: green for success, yellow for a failure undone,
// red for a failure that stands, grey for what never ran, the default
// colour for what is under way. Every cell of the column gets a two-digit
// code, so tabwriter lines it up as if it had no colour (see
// statusTable.healthCell).
func stateCell(pal Palette, text, state string) string {
	if !pal.on {
		return text
	}
	code := "39"
	switch state {
	case api.ExecutionSucceeded, "done":
		code = "32"
	case api.ExecutionCompensated, "cancelled":
		code = "33"
	case api.ExecutionFailed, api.ExecutionPartiallyCompensated, "not_compensated":
		code = "31"
	case "skipped", "not_started":
		code = "90"
	}
	return pal.wrap(code, text)
}

// timeline renders `flows show`: the execution's header lines, then its
// steps, its compensations and its answer.
type timeline struct {
	pal Palette
	now time.Time
}

// keyWidth aligns the values of the header lines, the longest key
// ("Failed step") and a gap included.
const keyWidth = 13

func (t timeline) write(w io.Writer, e *api.Execution) error {
	line := func(key, value string) { fmt.Fprintf(w, "%-*s%s\n", keyWidth, key, value) }
	line("ID", e.ID)
	flow := e.Flow
	if e.Cell != "" {
		flow = e.Cell + "/" + e.Flow
	}
	line("Flow", flow)
	state := stateCell(t.pal, dash(e.State), e.State)
	if e.TimedOut {
		state += " (past its deadline)"
	}
	line("State", state)
	if e.FailedStep != "" {
		line("Failed step", e.FailedStep)
	}
	started := "-"
	if !e.Started.IsZero() {
		started = e.Started.UTC().Format(time.RFC3339Nano) + " (" + ago(t.now, e.Started) + ")"
	}
	line("Started", started)
	line("Duration", fmtMs(e.DurationMs))
	if e.Async {
		line("Async", "yes")
	}
	recovered := "no"
	if e.Recovered {
		recovered = "yes: a restarted gateway finished it"
	}
	line("Recovered", recovered)

	if len(e.Steps) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
		fmt.Fprintf(tw, "STEP\t%s\tSTATUS\tTRIES\tDURATION\tERROR\n", stateCell(t.pal, "STATE", ""))
		for _, s := range e.Steps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, stateCell(t.pal, dash(s.State), s.State),
				countOrDash(s.Status), countOrDash(s.Tries), fmtMs(s.DurationMs), dash(oneLine(s.Error)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(e.Compensations) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
		fmt.Fprintf(tw, "COMPENSATION\t%s\tSTATUS\tTRIES\tERROR\n", stateCell(t.pal, "OUTCOME", ""))
		for _, c := range e.Compensations {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Step, stateCell(t.pal, dash(c.Outcome), c.Outcome),
				countOrDash(c.Status), countOrDash(c.Tries), dash(oneLine(c.Error)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if e.Response != nil {
		fmt.Fprintln(w)
		line("Response", strings.TrimSpace(fmt.Sprintf("%d %s", e.Response.Status, http.StatusText(e.Response.Status))))
	}
	return nil
}

// countOrDash shows a status or a count, "-" for none.
func countOrDash(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

// oneLine keeps an error message on its row of the table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
