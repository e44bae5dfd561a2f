package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/sparegrid/sparegrid/coordinator/client"
)

// ago describes t relative to now: "12s ago", "5m ago", "3h ago", "4d ago".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
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

func agoOrNever(now time.Time, t *time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	return ago(now, *t)
}

// stamp prints a time with how long ago it was, or "-".
func stamp(now time.Time, t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339) + " (" + ago(now, *t) + ")"
}

// clean makes a string from the coordinator safe to print in a table on a
// terminal: control characters, which could move the cursor or break the
// columns, become '?'. Empty strings become "-".
func clean(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return '?'
		}
		return r
	}, s)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// row writes cells, cleaned, as one table row.
func row(w io.Writer, cells ...string) {
	for i, c := range cells {
		cells[i] = clean(c)
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func parseID(what, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s %q: want a positive number", what, s)
	}
	return id, nil
}

func agentLabel(j client.Job) string {
	switch {
	case j.AgentName != "" && j.Agent != nil:
		return fmt.Sprintf("%s (#%d)", j.AgentName, *j.Agent)
	case j.AgentName != "":
		return j.AgentName
	case j.Agent != nil:
		return "#" + strconv.FormatInt(*j.Agent, 10)
	}
	return ""
}

func jobTable(w io.Writer, now time.Time, jobs []client.Job) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tPACKAGE\tVERSION\tRELEASE\tARCH\tSTATE\tVERDICT\tAGENT\tAGE")
	for _, j := range jobs {
		row(tw, strconv.FormatInt(j.ID, 10), j.Package, j.Version, j.Release, j.Arch,
			j.State, string(j.Verdict), agentLabel(j), ago(now, j.CreatedAt))
	}
	return tw.Flush()
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
