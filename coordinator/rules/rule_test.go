package rules

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckConfigErrors(t *testing.T) {
	ok := Rule{Name: "ok", When: `event.type == "upload"`}
	tests := []struct {
		name string
		rule Rule
		// says is a fragment the message must carry, so that a person can
		// find and fix the rule.
		says string
	}{
		{"no name", Rule{When: "true"}, "rule number 2: name is missing"},
		{"bad name", Rule{Name: "Reverse Deps", When: "true"}, "name"},
		{"duplicate name", Rule{Name: "ok", When: "true"}, `rule "ok": another rule has the same name`},
		{"no when", Rule{Name: "r"}, `rule "r": when is missing`},
		{"syntax error", Rule{Name: "r", When: `event.type == `}, `rule "r": when: ERROR`},
		{"undeclared variable", Rule{Name: "r", When: `evnt.type == "upload"`}, "undeclared reference to 'evnt'"},
		{"unknown field", Rule{Name: "r", When: `event.tpye == "upload"`}, "undefined field 'tpye'"},
		{"when not bool", Rule{Name: "r", When: `event.type`}, `rule "r": when: the expression yields string, want bool`},
		{"when int", Rule{Name: "r", When: `size(event.metadata)`}, "yields int, want bool"},
		{"type mismatch", Rule{Name: "r", When: `event.id == "17"`}, "no matching overload"},
		{"unknown function", Rule{Name: "r", When: `event.source.regexMatch("x")`}, "undeclared reference"},
		{"triggered of int", Rule{Name: "r", When: "true", Packages: "triggered(1)"}, `rule "r": packages: ERROR`},
		{"packages not a list", Rule{Name: "r", When: "true", Packages: "event.source"}, "packages: the expression yields string, want list(string)"},
		{"packages list of int", Rule{Name: "r", When: "true", Packages: "[1, 2]"}, "want list(string)"},
		{"targets not maps", Rule{Name: "r", When: "true", Targets: `["trixie/amd64"]`}, "targets: the expression yields list(string), want list(map(string, string))"},
		{"targets and releases", Rule{Name: "r", When: "true", Targets: `[{"release": "a", "arch": "b"}]`, Releases: []string{"sid"}}, "targets excludes releases and arches"},
		{"priority too high", Rule{Name: "r", When: "true", Priority: 11}, "priority 11: want 1 to 10"},
		{"priority negative", Rule{Name: "r", When: "true", Priority: -1}, "priority -1"},
		{"bad lane", Rule{Name: "r", When: "true", Lane: "Big Lane"}, "lane"},
		{"bad release", Rule{Name: "r", When: "true", Releases: []string{"--release"}}, "releases"},
		{"duplicate arch", Rule{Name: "r", When: "true", Arches: []string{"amd64", "amd64"}}, `arches: "amd64" is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check([]Rule{ok, tt.rule})
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Check(%+v) = %v, want %v", tt.rule, err, ErrConfig)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("Check(%+v) = %q, want it to say %q", tt.rule, err, tt.says)
			}
		})
	}
}

func TestCheckReportsEveryBadRule(t *testing.T) {
	err := Check([]Rule{
		{Name: "first", When: "event.nope"},
		{Name: "fine", When: "true"},
		{Name: "second", When: "1 +"},
	})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("Check() = %v, want %v", err, ErrConfig)
	}
	for _, name := range []string{`rule "first"`, `rule "second"`} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("Check() = %q, want it to name %s", err, name)
		}
	}
}

func TestCheckAcceptsEnvironment(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
	}{
		{"every field", Rule{Name: "r", When: `event.id > 0 && event.type == "upload" && event.source != "" && event.version != "" &&
			event.artifact_url.startsWith("https://") && event.build_id != "" && event.producer == "~buildd" &&
			event.received > timestamp("2020-01-01T00:00:00Z") && event.metadata["suite"] == "unstable"`}},
		{"glob", Rule{Name: "r", When: `event.source.glob("lib*")`}},
		{"regex", Rule{Name: "r", When: `event.source.matches("^lib.*[0-9]$")`}},
		{"string extensions", Rule{Name: "r", When: `event.metadata["arches"].split(",").exists(a, a.trim() == "arm64")`}},
		{"triggered", Rule{Name: "r", When: `size(triggered(event.source)) < 100`, Packages: `triggered(event.source).filter(p, !p.glob("*-doc"))`}},
		{"targets", Rule{Name: "r", When: "true", Targets: `event.metadata["arches"].split(",").map(a, {"release": "trixie", "arch": a})`}},
		{"releases only", Rule{Name: "r", When: "true", Releases: []string{"trixie"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Check([]Rule{tt.rule}); err != nil {
				t.Errorf("Check(%+v) = %v, want nil", tt.rule, err)
			}
		})
	}
}

func TestParseRules(t *testing.T) {
	data, err := os.ReadFile("testdata/rules.toml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := ParseRules(data)
	if err != nil {
		t.Fatalf("ParseRules(testdata/rules.toml) error = %v", err)
	}
	var names []string
	for _, r := range rules {
		names = append(names, r.Name)
	}
	want := []string{"reverse-deps", "reverse-deps-large", "team-libs-everywhere", "image-smoke"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("ParseRules(testdata/rules.toml) names mismatch (-want +got):\n%s", diff)
	}
	if err := Check(rules); err != nil {
		t.Errorf("Check(testdata/rules.toml) = %v, want nil", err)
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"unknown key", "[[rule]]\nname = \"r\"\nwhen = \"true\"\nwhenn = \"false\"\n"},
		{"unknown table", "[rules]\nname = \"r\"\n"},
		{"wrong type", "[[rule]]\nname = \"r\"\npriority = \"high\"\n"},
		{"not TOML", "[[rule]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseRules([]byte(tt.in)); !errors.Is(err, ErrConfig) {
				t.Errorf("ParseRules(%q) error = %v, want %v", tt.in, err, ErrConfig)
			}
		})
	}
}

func TestRulesDefaults(t *testing.T) {
	in := []Rule{
		{Name: "a", When: "true"},
		{Name: "b", When: "true", Priority: 9, Lane: "fast", Releases: []string{"sid"}},
	}
	e, err := New(in, Options{Targets: TargetsFunc(staticTargets)})
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Name: "a", When: "true", Priority: DefaultPriority},
		{Name: "b", When: "true", Priority: 9, Lane: "fast", Releases: []string{"sid"}},
	}
	if diff := cmp.Diff(want, e.Rules()); diff != "" {
		t.Errorf("Rules() mismatch (-want +got):\n%s", diff)
	}
}
