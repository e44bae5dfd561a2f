package rules

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"github.com/BurntSushi/toml"

	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
)

// Priorities run from MinPriority to MaxPriority; a higher number is more
// urgent. A rule that sets none gets DefaultPriority.
const (
	MinPriority     = 1
	MaxPriority     = 10
	DefaultPriority = 5
)

// ErrConfig is wrapped by every error about the rule configuration.
var ErrConfig = errors.New("rules: bad rule")

// Rule turns matching events into test requests. In the coordinator's
// TOML configuration it is a [[rule]] table.
//
// When is a CEL expression over the variable event that yields a bool.
// Packages, when set, is a CEL expression that yields list(string): the
// source packages to test; without it a rule tests the event's source.
// Targets, when set, is a CEL expression that yields
// list(map(string, string)) with keys "release" and "arch". Without
// Targets, Releases and Arches list the targets; an empty one means every
// release (or architecture) the grid knows. Targets excludes Releases and
// Arches.
type Rule struct {
	Name     string   `toml:"name"`
	When     string   `toml:"when"`
	Packages string   `toml:"packages"`
	Targets  string   `toml:"targets"`
	Releases []string `toml:"releases"`
	Arches   []string `toml:"arches"`
	// Priority is 1 to 10, higher first; 0 means DefaultPriority.
	Priority int `toml:"priority"`
	// Lane names the queue lane the requests go to; empty means the
	// coordinator's default lane.
	Lane string `toml:"lane"`
	// AptSource, when set, is an apt source line the requests add to the
	// testbed, with "{artifact_url}" standing for the event's artifact
	// URL: `deb [trusted=yes] {artifact_url} ./` installs an upload from
	// the flat repository the build system published it in, so that the
	// tests it triggers run against it.
	AptSource string `toml:"apt_source"`
}

// ArtifactURLVar is the placeholder Rule.AptSource replaces with the
// event's artifact URL.
const ArtifactURLVar = "{artifact_url}"

// ParseRules decodes a TOML document of [[rule]] tables strictly: a key
// that is not a Rule field is an error. It does not compile the rules;
// New and Check do.
func ParseRules(data []byte) ([]Rule, error) {
	var doc struct {
		Rules []Rule `toml:"rule"`
	}
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%w: unknown keys: %s", ErrConfig, strings.Join(keys, ", "))
	}
	return doc.Rules, nil
}

// Check compiles and type-checks rules as New does, for configuration
// checks that have no grid to ask.
func Check(rules []Rule) error {
	_, err := compileRules(rules, Options{}.withDefaults())
	return err
}

// eventTypeName is the CEL type of the event variable.
const eventTypeName = "sparegrid.Event"

// newEnv declares what rules may use: the event variable, CEL's standard
// library and string extensions, triggered() and glob().
func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		ext.NativeTypes(
			types.NativeTypeFor[Event](types.NativeTypeAlias(eventTypeName)),
			ext.ParseStructTags(true),
		),
		cel.VariableWithDoc("event", cel.ObjectType(eventTypeName), "the event being expanded"),
		cel.Function("triggered",
			cel.Overload("triggered_string", []*cel.Type{cel.StringType}, cel.ListType(cel.StringType),
				cel.LateFunctionBinding()),
			cel.FunctionDocs("triggered(source) lists the source packages whose tests a new version of source triggers"),
		),
		cel.Function("glob",
			cel.MemberOverload("string_glob_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(globBinding)),
			cel.FunctionDocs(`s.glob(pattern) reports whether s matches a shell glob ("lib*", "python3-?")`),
		),
		ext.Strings(),
	)
}

func globBinding(s, pattern ref.Val) ref.Val {
	str, ok1 := s.(types.String)
	pat, ok2 := pattern.(types.String)
	if !ok1 || !ok2 {
		return types.NewErr("glob: want two strings")
	}
	ok, err := path.Match(string(pat), string(str))
	if err != nil {
		return types.NewErr("glob: bad pattern %q", string(pat))
	}
	return types.Bool(ok)
}

// compiled is a rule with its programs. packages and targets are nil when
// the rule leaves them out.
type compiled struct {
	Rule
	when, packages, targets cel.Program
}

func compileRules(rules []Rule, opts Options) ([]compiled, error) {
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("rules: CEL environment: %w", err)
	}
	progOpts := []cel.ProgramOption{
		cel.CostLimit(opts.CostLimit),
		cel.InterruptCheckFrequency(interruptCheckFrequency),
	}
	var errs []error
	seen := map[string]bool{}
	out := make([]compiled, 0, len(rules))
	for i, r := range rules {
		c, err := compileRule(env, r, progOpts)
		if err == nil && seen[r.Name] {
			err = errors.New("another rule has the same name")
		}
		if err != nil {
			name := fmt.Sprintf("%q", r.Name)
			if r.Name == "" {
				name = fmt.Sprintf("number %d", i+1)
			}
			errs = append(errs, fmt.Errorf("%w: rule %s: %w", ErrConfig, name, err))
			continue
		}
		seen[r.Name] = true
		out = append(out, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// interruptCheckFrequency is how many comprehension iterations CEL runs
// between checks of the evaluation's context.
const interruptCheckFrequency = 100

func compileRule(env *cel.Env, r Rule, progOpts []cel.ProgramOption) (compiled, error) {
	c := compiled{Rule: r}
	if r.Name == "" {
		return c, errors.New("name is missing")
	}
	if r.AptSource != "" && !protocol.ValidAptSource(strings.ReplaceAll(r.AptSource, ArtifactURLVar, "http://example.org/")) {
		return c, fmt.Errorf("apt_source %q: want one sources.list line starting with \"deb \" or \"deb-src \"", clip(r.AptSource))
	}
	if !validName(r.Name) {
		return c, fmt.Errorf("name %q: want 1 to %d lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", clip(r.Name), MaxNameLen)
	}
	if strings.TrimSpace(r.When) == "" {
		return c, errors.New("when is missing: give a CEL expression such as event.type == \"upload\"")
	}
	if r.Priority != 0 && (r.Priority < MinPriority || r.Priority > MaxPriority) {
		return c, fmt.Errorf("priority %d: want %d to %d", r.Priority, MinPriority, MaxPriority)
	}
	if c.Priority == 0 {
		c.Priority = DefaultPriority
	}
	if r.Lane != "" && !validName(r.Lane) {
		return c, fmt.Errorf("lane %q: want 1 to %d lower-case letters, digits, '.', '_' or '-'", clip(r.Lane), MaxNameLen)
	}
	if strings.TrimSpace(r.Targets) != "" && (len(r.Releases) > 0 || len(r.Arches) > 0) {
		return c, errors.New("targets excludes releases and arches: use one or the other")
	}
	for _, list := range []struct {
		name  string
		items []string
	}{{"releases", r.Releases}, {"arches", r.Arches}} {
		for i, s := range list.items {
			if !dep8.ValidSuite(s) {
				return c, fmt.Errorf("%s: %q is not a release or architecture name", list.name, clip(s))
			}
			if slices.Contains(list.items[:i], s) {
				return c, fmt.Errorf("%s: %q is listed twice", list.name, s)
			}
		}
	}
	var err error
	if c.when, err = compileExpr(env, "when", r.When, cel.BoolType, progOpts); err != nil {
		return c, err
	}
	if strings.TrimSpace(r.Packages) != "" {
		if c.packages, err = compileExpr(env, "packages", r.Packages, cel.ListType(cel.StringType), progOpts); err != nil {
			return c, err
		}
	}
	if strings.TrimSpace(r.Targets) != "" {
		want := cel.ListType(cel.MapType(cel.StringType, cel.StringType))
		if c.targets, err = compileExpr(env, "targets", r.Targets, want, progOpts); err != nil {
			return c, err
		}
	}
	return c, nil
}

func compileExpr(env *cel.Env, part, src string, want *cel.Type, progOpts []cel.ProgramOption) (cel.Program, error) {
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%s: %w", part, iss.Err())
	}
	if got := ast.OutputType(); !got.IsExactType(want) {
		return nil, fmt.Errorf("%s: the expression yields %s, want %s", part, got, want)
	}
	prg, err := env.Program(ast, progOpts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", part, err)
	}
	return prg, nil
}
