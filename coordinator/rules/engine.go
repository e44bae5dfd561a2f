package rules

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
)

// Defaults for Options.
const (
	// DefaultCostLimit bounds the CEL cost of each expression of a rule.
	// Filtering a list of a few thousand packages costs tens of thousands.
	DefaultCostLimit = 1_000_000
	// DefaultTimeout bounds the evaluation of one rule, reverse-dependency
	// lookups included.
	DefaultTimeout = 2 * time.Second
	// DefaultMaxRequests bounds the requests one rule may make from one
	// event.
	DefaultMaxRequests = 20_000
	// DefaultMaxLookups bounds the distinct triggered() lookups one event
	// may cause across all rules.
	DefaultMaxLookups = 64
)

// Errors a rule can fail with at run time. Each is recorded in the rule's
// RuleOutcome, wrapped with the rule's name and the expression that failed.
var (
	// ErrEval: CEL could not evaluate an expression (no such key, a
	// division by zero, a bad glob pattern).
	ErrEval = errors.New("rules: evaluation failed")
	// ErrCostLimit: an expression went over Options.CostLimit.
	ErrCostLimit = errors.New("rules: cost limit exceeded")
	// ErrTimeout: the rule ran longer than Options.Timeout.
	ErrTimeout = errors.New("rules: evaluation timed out")
	// ErrTriggered: a reverse-dependency lookup failed or none is
	// configured.
	ErrTriggered = errors.New("rules: reverse-dependency lookup failed")
	// ErrTooManyLookups: the event caused more than Options.MaxLookups
	// distinct triggered() lookups.
	ErrTooManyLookups = errors.New("rules: too many reverse-dependency lookups")
	// ErrBadResult: an expression yielded something that is not a package
	// or target, or there is no package to test.
	ErrBadResult = errors.New("rules: bad expression result")
	// ErrTooManyRequests: a rule would make more than Options.MaxRequests
	// requests.
	ErrTooManyRequests = errors.New("rules: too many requests")
)

// ReverseDeps answers triggered(source) in rules.
type ReverseDeps interface {
	// Triggered returns the source packages whose tests a new version of
	// source should run: source itself when it has tests, and every
	// source whose tests depend on, or name in Testsuite-Triggers, a
	// binary built by source. An unknown source yields an empty list, not
	// an error.
	Triggered(ctx context.Context, source string) ([]string, error)
}

// ReverseDepsFunc adapts a function to ReverseDeps.
type ReverseDepsFunc func(ctx context.Context, source string) ([]string, error)

// Triggered calls f.
func (f ReverseDepsFunc) Triggered(ctx context.Context, source string) ([]string, error) {
	return f(ctx, source)
}

// Target is a release and architecture tests run on.
type Target struct {
	Release string
	Arch    string
}

func (t Target) String() string { return t.Release + "/" + t.Arch }

// TargetStatus says whether the grid can run tests on a target now.
type TargetStatus struct {
	Target
	// Capable is true when at least one agent that may take work can run
	// tests on the target.
	Capable bool
	// Reason says why not, for people, when Capable is false.
	Reason string
}

// Targets tells the engine which targets the grid knows and can serve.
type Targets interface {
	// Status returns every target the grid knows (from configured
	// archives and agents' capabilities), each saying whether it can be
	// served now. It is called once per Expand.
	Status(ctx context.Context) ([]TargetStatus, error)
}

// TargetsFunc adapts a function to Targets.
type TargetsFunc func(ctx context.Context) ([]TargetStatus, error)

// Status calls f.
func (f TargetsFunc) Status(ctx context.Context) ([]TargetStatus, error) { return f(ctx) }

// Options configure an Engine. Zero fields take the defaults above.
type Options struct {
	// Targets is required.
	Targets Targets
	// ReverseDeps answers triggered(); without it triggered() fails with
	// ErrTriggered.
	ReverseDeps ReverseDeps
	CostLimit   uint64
	Timeout     time.Duration
	MaxRequests int
	MaxLookups  int
}

func (o Options) withDefaults() Options {
	if o.CostLimit == 0 {
		o.CostLimit = DefaultCostLimit
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxRequests <= 0 {
		o.MaxRequests = DefaultMaxRequests
	}
	if o.MaxLookups <= 0 {
		o.MaxLookups = DefaultMaxLookups
	}
	return o
}

// Engine expands events into requests with compiled rules.
type Engine struct {
	rules []compiled
	opts  Options
}

// New compiles rules. Every rule that does not compile or type-check is
// reported, each error wrapping ErrConfig and naming its rule.
func New(rules []Rule, opts Options) (*Engine, error) {
	if opts.Targets == nil {
		return nil, errors.New("rules: New needs Options.Targets")
	}
	opts = opts.withDefaults()
	c, err := compileRules(rules, opts)
	if err != nil {
		return nil, err
	}
	return &Engine{rules: c, opts: opts}, nil
}

// Rules returns the engine's rules in evaluation order, with defaults
// filled in.
func (e *Engine) Rules() []Rule {
	out := make([]Rule, len(e.rules))
	for i, c := range e.rules {
		out[i] = c.Rule
	}
	return out
}

// Expansion is what one event became.
type Expansion struct {
	// Rules has one outcome per rule, in evaluation order.
	Rules []RuleOutcome
	// Requests are deduplicated and sorted by package, release, arch,
	// version and triggers.
	Requests []Request
}

// RuleOutcome is what one rule made of an event.
type RuleOutcome struct {
	Rule string
	// Matched is true when the rule's when yielded true.
	Matched bool
	// Requests counts the requests the rule asked for, before
	// deduplication across rules.
	Requests int
	// Warnings note what the rule could not expand, such as a release
	// with no known architecture.
	Warnings []string
	// Err says why the rule failed; a failed rule adds no requests.
	Err error
}

// Request is one test the event asks for.
type Request struct {
	Package string
	// Version is the event's version when Package is the event's source,
	// otherwise empty: the archive's current version.
	Version  string
	Release  string
	Arch     string
	Triggers []string
	// Priority is the highest of the matching rules' priorities.
	Priority int
	// Lane is the lane of the first rule with that priority.
	Lane string
	// Rules names every rule that asked for the request, in evaluation
	// order.
	Rules  []string
	Reason string
	// Pending is true when no agent can run tests on the target now; the
	// request stands and waits, with PendingReason saying why.
	Pending       bool
	PendingReason string
	// AptSources are the apt source lines the matching rules add to the
	// testbed (Rule.AptSource), in rule order.
	AptSources []string
}

type requestKey struct {
	pkg, version, release, arch, triggers string
}

// Expand evaluates every rule against ev. It fails for an invalid event,
// a failing Targets lookup or a cancelled ctx; a failing rule is recorded
// in the Expansion instead.
func (e *Engine) Expand(ctx context.Context, ev Event) (Expansion, error) {
	if err := ev.Validate(); err != nil {
		return Expansion{}, err
	}
	status, err := e.opts.Targets.Status(ctx)
	if err != nil {
		return Expansion{}, fmt.Errorf("rules: target status: %w", err)
	}
	g := newGrid(status)
	lk := &lookups{deps: e.opts.ReverseDeps, max: e.opts.MaxLookups, cache: map[string][]string{}}
	var x Expansion
	merged := map[requestKey]*Request{}
	for _, r := range e.rules {
		out, reqs := e.evalRule(ctx, r, ev, g, lk)
		if ctx.Err() != nil {
			return Expansion{}, context.Cause(ctx)
		}
		x.Rules = append(x.Rules, out)
		for _, q := range reqs {
			k := requestKey{q.Package, q.Version, q.Release, q.Arch, strings.Join(q.Triggers, " ")}
			m, ok := merged[k]
			if !ok {
				merged[k] = &q
				continue
			}
			if !slices.Contains(m.Rules, r.Name) {
				m.Rules = append(m.Rules, r.Name)
			}
			for _, l := range q.AptSources {
				if !slices.Contains(m.AptSources, l) {
					m.AptSources = append(m.AptSources, l)
				}
			}
			if q.Priority > m.Priority {
				m.Priority, m.Lane = q.Priority, q.Lane
			}
		}
	}
	what := describeEvent(ev)
	for _, q := range merged {
		q.Reason = fmt.Sprintf("%s matched %s", what, quoteRules(q.Rules))
		x.Requests = append(x.Requests, *q)
	}
	slices.SortFunc(x.Requests, func(a, b Request) int {
		return cmp.Or(
			cmp.Compare(a.Package, b.Package),
			cmp.Compare(a.Release, b.Release),
			cmp.Compare(a.Arch, b.Arch),
			cmp.Compare(a.Version, b.Version),
			slices.Compare(a.Triggers, b.Triggers),
		)
	})
	return x, nil
}

// evalRule runs one rule under its own timeout. It returns no requests
// when the rule does not match or fails.
func (e *Engine) evalRule(ctx context.Context, r compiled, ev Event, g grid, lk *lookups) (RuleOutcome, []Request) {
	out := RuleOutcome{Rule: r.Name}
	rctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	var lookupErr error
	triggered := func(_ string, args ...ref.Val) ref.Val {
		src, ok := args[0].(types.String)
		if !ok {
			return types.NewErr("triggered: want a string")
		}
		pkgs, err := lk.triggered(rctx, string(src))
		if err != nil {
			lookupErr = err
			return types.WrapErr(err)
		}
		return types.NewStringList(types.DefaultTypeAdapter, pkgs)
	}
	act, err := cel.FunctionVars(map[string]any{"event": &ev}, map[string]cel.LateBoundFunction{"triggered": triggered})
	if err != nil {
		out.Err = fmt.Errorf("%w: rule %q: %w", ErrEval, r.Name, err)
		return out, nil
	}
	eval := func(part string, prg cel.Program) (ref.Val, error) {
		lookupErr = nil
		val, _, err := prg.ContextEval(rctx, act)
		if err == nil {
			return val, nil
		}
		switch {
		case ctx.Err() != nil:
			err = context.Cause(ctx)
		case errors.Is(rctx.Err(), context.DeadlineExceeded):
			err = fmt.Errorf("%w after %v", ErrTimeout, e.opts.Timeout)
		case isCostLimit(err):
			err = fmt.Errorf("%w (limit %d)", ErrCostLimit, e.opts.CostLimit)
		case lookupErr != nil:
			err = lookupErr
		default:
			err = fmt.Errorf("%w: %w", ErrEval, err)
		}
		return nil, fmt.Errorf("rule %q: %s: %w", r.Name, part, err)
	}

	val, err := eval("when", r.when)
	if err != nil {
		out.Err = err
		return out, nil
	}
	if val != types.True {
		return out, nil
	}
	out.Matched = true

	pkgs, err := e.packages(ev, r, eval)
	if err != nil {
		out.Err = err
		return out, nil
	}
	targets, err := e.targets(r, g, eval, &out)
	if err != nil {
		out.Err = err
		return out, nil
	}
	if len(pkgs) == 0 {
		out.Warnings = append(out.Warnings, "packages is empty: nothing to test")
	}
	if n := len(pkgs) * len(targets); n > e.opts.MaxRequests {
		out.Err = fmt.Errorf("rule %q: %w: %d packages on %d targets make %d, more than %d",
			r.Name, ErrTooManyRequests, len(pkgs), len(targets), n, e.opts.MaxRequests)
		return out, nil
	}

	var triggers []string
	if ev.Source != "" && ev.Version != "" {
		triggers = []string{ev.Source + "/" + ev.Version}
	}
	var apt []string
	if r.AptSource != "" {
		line := strings.ReplaceAll(r.AptSource, ArtifactURLVar, ev.ArtifactURL)
		switch {
		case strings.Contains(r.AptSource, ArtifactURLVar) && ev.ArtifactURL == "":
			out.Warnings = append(out.Warnings, "apt_source needs the event's artifact_url; the tests run without it")
		case !protocol.ValidAptSource(line):
			out.Warnings = append(out.Warnings, fmt.Sprintf("apt_source %q is not one sources.list line; the tests run without it", clip(line)))
		default:
			apt = []string{line}
		}
	}
	reqs := make([]Request, 0, len(pkgs)*len(targets))
	for _, p := range pkgs {
		version := ""
		if p == ev.Source {
			version = ev.Version
		}
		for _, t := range targets {
			pending, why := g.pending(t)
			reqs = append(reqs, Request{
				Package:       p,
				Version:       version,
				Release:       t.Release,
				Arch:          t.Arch,
				Triggers:      slices.Clone(triggers),
				Priority:      r.Priority,
				Lane:          r.Lane,
				Rules:         []string{r.Name},
				Pending:       pending,
				PendingReason: why,
				AptSources:    slices.Clone(apt),
			})
		}
	}
	out.Requests = len(reqs)
	return out, reqs
}

type evalFunc func(part string, prg cel.Program) (ref.Val, error)

// packages returns the rule's packages, sorted and without duplicates.
func (e *Engine) packages(ev Event, r compiled, eval evalFunc) ([]string, error) {
	if r.packages == nil {
		if ev.Source == "" {
			return nil, fmt.Errorf("rule %q: packages: %w: the event names no source and the rule has no packages expression", r.Name, ErrBadResult)
		}
		return []string{ev.Source}, nil
	}
	val, err := eval("packages", r.packages)
	if err != nil {
		return nil, err
	}
	native, err := val.ConvertToNative(reflect.TypeFor[[]string]())
	if err != nil {
		return nil, fmt.Errorf("rule %q: packages: %w: %w", r.Name, ErrBadResult, err)
	}
	pkgs := native.([]string)
	for _, p := range pkgs {
		if !dep8.ValidSource(p) {
			return nil, fmt.Errorf("rule %q: packages: %w: %q is not a source package name", r.Name, ErrBadResult, clip(p))
		}
	}
	slices.Sort(pkgs)
	return slices.Compact(pkgs), nil
}

// targets returns the rule's targets, sorted and without duplicates.
func (e *Engine) targets(r compiled, g grid, eval evalFunc, out *RuleOutcome) ([]Target, error) {
	if r.targets == nil {
		ts, warnings := g.expand(r.Releases, r.Arches)
		out.Warnings = append(out.Warnings, warnings...)
		return ts, nil
	}
	val, err := eval("targets", r.targets)
	if err != nil {
		return nil, err
	}
	native, err := val.ConvertToNative(reflect.TypeFor[[]map[string]string]())
	if err != nil {
		return nil, fmt.Errorf("rule %q: targets: %w: %w", r.Name, ErrBadResult, err)
	}
	var ts []Target
	for i, m := range native.([]map[string]string) {
		t := Target{Release: m["release"], Arch: m["arch"]}
		if len(m) != 2 || !dep8.ValidSuite(t.Release) || !dep8.ValidSuite(t.Arch) {
			return nil, fmt.Errorf("rule %q: targets: %w: item %d is %s, want {\"release\": R, \"arch\": A} with valid names",
				r.Name, ErrBadResult, i, clip(fmt.Sprint(m)))
		}
		ts = append(ts, t)
	}
	slices.SortFunc(ts, compareTargets)
	return slices.Compact(ts), nil
}

func compareTargets(a, b Target) int {
	return cmp.Or(cmp.Compare(a.Release, b.Release), cmp.Compare(a.Arch, b.Arch))
}

func isCostLimit(err error) bool {
	var ce interpreter.EvalCancelledError
	return errors.As(err, &ce) && ce.Cause == interpreter.CostLimitExceeded
}

// grid is one Expand's view of the targets.
type grid struct {
	status map[Target]TargetStatus
	known  []Target
}

func newGrid(status []TargetStatus) grid {
	g := grid{status: make(map[Target]TargetStatus, len(status))}
	for _, s := range status {
		if _, dup := g.status[s.Target]; !dup {
			g.known = append(g.known, s.Target)
		}
		g.status[s.Target] = s
	}
	slices.SortFunc(g.known, compareTargets)
	return g
}

// pending reports whether t cannot be served now, and why.
func (g grid) pending(t Target) (bool, string) {
	s, ok := g.status[t]
	switch {
	case !ok:
		return true, fmt.Sprintf("no agent offers %s", t)
	case s.Capable:
		return false, ""
	case s.Reason != "":
		return true, s.Reason
	}
	return true, fmt.Sprintf("no agent can run tests on %s now", t)
}

// expand turns a rule's releases and arches into targets. An empty list
// stands for every release (or arch) the grid knows; a release or arch
// that then pairs with nothing is reported in a warning.
func (g grid) expand(releases, arches []string) ([]Target, []string) {
	var ts []Target
	var warnings []string
	switch {
	case len(releases) > 0 && len(arches) > 0:
		for _, r := range releases {
			for _, a := range arches {
				ts = append(ts, Target{r, a})
			}
		}
	case len(releases) > 0:
		for _, r := range releases {
			n := len(ts)
			for _, t := range g.known {
				if t.Release == r {
					ts = append(ts, t)
				}
			}
			if len(ts) == n {
				warnings = append(warnings, fmt.Sprintf("release %s: the grid knows no architecture for it, so nothing was requested there", r))
			}
		}
	case len(arches) > 0:
		for _, a := range arches {
			n := len(ts)
			for _, t := range g.known {
				if t.Arch == a {
					ts = append(ts, t)
				}
			}
			if len(ts) == n {
				warnings = append(warnings, fmt.Sprintf("arch %s: the grid knows no release for it, so nothing was requested there", a))
			}
		}
	default:
		ts = slices.Clone(g.known)
		if len(ts) == 0 {
			warnings = append(warnings, "the grid knows no targets, so nothing was requested")
		}
	}
	slices.SortFunc(ts, compareTargets)
	return slices.Compact(ts), warnings
}

// lookups answers and caches triggered() for one Expand.
type lookups struct {
	deps  ReverseDeps
	max   int
	cache map[string][]string
}

func (l *lookups) triggered(ctx context.Context, source string) ([]string, error) {
	if pkgs, ok := l.cache[source]; ok {
		return pkgs, nil
	}
	if !dep8.ValidSource(source) {
		return nil, fmt.Errorf("%w: triggered(%q): not a source package name", ErrTriggered, clip(source))
	}
	if l.deps == nil {
		return nil, fmt.Errorf("%w: triggered(%q): no reverse-dependency source is configured", ErrTriggered, source)
	}
	if len(l.cache) >= l.max {
		return nil, fmt.Errorf("%w: triggered(%q) would be lookup %d, more than %d", ErrTooManyLookups, source, len(l.cache)+1, l.max)
	}
	pkgs, err := l.deps.Triggered(ctx, source)
	if err != nil {
		return nil, fmt.Errorf("%w: triggered(%q): %w", ErrTriggered, source, err)
	}
	pkgs = slices.Clone(pkgs)
	slices.Sort(pkgs)
	pkgs = slices.Compact(pkgs)
	l.cache[source] = pkgs
	return pkgs, nil
}

// describeEvent names ev for a request's reason, as in
// "event 17 (upload of libfoo 1.2-1)".
func describeEvent(ev Event) string {
	what := ev.Type
	switch {
	case ev.Source != "" && ev.Version != "":
		what += " of " + ev.Source + " " + ev.Version
	case ev.Source != "":
		what += " of " + ev.Source
	}
	if ev.BuildID != "" {
		what += ", build " + ev.BuildID
	}
	if ev.ID == 0 {
		return "event (" + what + ")"
	}
	return fmt.Sprintf("event %d (%s)", ev.ID, what)
}

func quoteRules(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + n + "'"
	}
	if len(q) == 1 {
		return "rule " + q[0]
	}
	return "rules " + strings.Join(q, ", ")
}
