package health

import (
	"fmt"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

// Transition is what one outcome does to a check's state.
type Transition int

// Transitions.
const (
	// StillUp: nothing to record.
	StillUp Transition = iota
	// WentDown: open a downtime interval and hold the scope.
	WentDown
	// StillDown: refresh the interval's last error and the hold.
	StillDown
	// CameUp: end the interval and lift the hold.
	CameUp
)

func (t Transition) String() string {
	return [...]string{"still up", "went down", "still down", "came up"}[t]
}

// decide returns the transition an outcome makes from a check that was
// down or up.
func decide(wasDown bool, o Outcome) Transition {
	switch {
	case wasDown && o.Up:
		return CameUp
	case wasDown:
		return StillDown
	case o.Up:
		return StillUp
	}
	return WentDown
}

// abort is one scope whose queued jobs are to be ended.
type abort struct {
	scope        store.Scope
	queuedBefore time.Time
	reason       string
}

// overdue returns, for each scope held since at least maxHold before now,
// the abort of the jobs queued in it at least maxHold ago, explained by
// its oldest hold. Holds are as store.Holds returns them: by scope, then
// oldest first.
func overdue(holds []store.Hold, now time.Time, maxHold time.Duration) []abort {
	var out []abort
	cutoff := now.Add(-maxHold)
	for i, h := range holds {
		if i > 0 && holds[i-1].Scope == h.Scope {
			continue
		}
		if h.Since.After(cutoff) {
			continue
		}
		out = append(out, abort{scope: h.Scope, queuedBefore: cutoff, reason: heldReason(h, maxHold)})
	}
	return out
}

// heldReason is the reason a job aborted under hold h is given.
func heldReason(h store.Hold, maxHold time.Duration) string {
	if check, ok := h.CheckName(); ok {
		return fmt.Sprintf("held for %s while check %s failed", shortDuration(maxHold), check)
	}
	return store.OneLine(fmt.Sprintf("held for %s while %s held %s: %s", shortDuration(maxHold), h.By, h.Scope, h.Reason))
}

// holdReason is the reason a failing check's hold gives.
func holdReason(c Check, o Outcome) string {
	return store.OneLine(fmt.Sprintf("check %s failed: %s", c.Name, o.Detail))
}

// shortDuration writes d as "24h", "1h30m" or "90s": without zero units.
func shortDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
